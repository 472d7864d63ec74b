import type { Selectable, Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import { generateApiKey } from '../auth/api-keys.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { type Page, type PageRequest, paginate } from '../db/paginate.js'
import type { ApiKeys, DB } from '../db/types.js'
import { ForbiddenError, NotFoundError, ValidationError } from '../errors/domain.js'

const API_KEY_COLUMNS = [
  'id',
  'name',
  'scopes',
  'key_prefix',
  'user_id',
  'expires_at',
  'last_used_at',
  'created_at',
] as const

type ApiKeyScope = 'read' | 'write'

export type ApiKey = Omit<Pick<Selectable<ApiKeys>, (typeof API_KEY_COLUMNS)[number]>, 'scopes'> & {
  scopes: ApiKeyScope[]
}

export interface NewApiKey {
  name: string
  scopes: ApiKeyScope[]
  expires_at?: string | null
}

/**
 * A key for the actor, acting with their role. Only a person's sign-in makes keys (the route refuses
 * API keys): a key that could make keys would let a leaked one outlive its revocation.
 */
export async function createApiKey(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  input: NewApiKey,
): Promise<ApiKey & { key: string }> {
  if (!input.scopes.includes('read')) throw ValidationError.field('scopes', 'must be ["read"] or ["read", "write"]')
  const expiresAt = input.expires_at == null ? null : new Date(input.expires_at)
  if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
    throw ValidationError.field('expires_at', 'must be in the future')
  }
  const { key, hash, prefix } = generateApiKey()
  const created = await trx
    .insertInto('api_keys')
    .values({
      user_id: actor.userId,
      name: input.name,
      key_hash: hash,
      key_prefix: prefix,
      scopes: input.scopes.includes('write') ? ['read', 'write'] : ['read'],
      expires_at: expiresAt,
    })
    .returning(API_KEY_COLUMNS)
    .$narrowType<{ scopes: ApiKeyScope[] }>()
    .executeTakeFirstOrThrow()
  await writeAudit(trx, actor, {
    table: 'api_keys',
    recordId: created.id,
    action: 'create',
    oldValues: null,
    newValues: created,
  })
  return { ...created, key }
}

/** The actor's own keys, or with `all` (admins only) everyone's; oldest first. */
export function listApiKeys(
  db: Database,
  actor: AuthenticatedActor,
  query: PageRequest & { all: boolean },
): Promise<Page<ApiKey>> {
  if (query.all && actor.role !== 'admin') throw new ForbiddenError('Only admins see the API keys of others')
  const keys = db.selectFrom('api_keys')
  return paginate(db, {
    matching: query.all ? keys : keys.where('api_keys.user_id', '=', actor.userId),
    select: (matching) => matching.select(API_KEY_COLUMNS).$narrowType<{ scopes: ApiKeyScope[] }>(),
    order: { keys: [], id: 'api_keys.id', direction: 'asc' },
    page: query,
    filters: { all: query.all },
  })
}

/** Revokes a key at once: its row goes, and every request looks its key up. Others' keys: admins only. */
export async function deleteApiKey(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<void> {
  const current = await trx
    .selectFrom('api_keys')
    .select(API_KEY_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  if (!current) throw new NotFoundError('API key')
  if (current.user_id !== actor.userId && actor.role !== 'admin') {
    throw new ForbiddenError('Only admins revoke the API keys of others')
  }
  await trx.deleteFrom('api_keys').where('id', '=', id).execute()
  await writeAudit(trx, actor, {
    table: 'api_keys',
    recordId: id,
    action: 'delete',
    oldValues: current,
    newValues: null,
  })
}
