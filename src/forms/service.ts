import { randomBytes } from 'node:crypto'
import { type Selectable, sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import { assertActiveUser } from '../auth/active-user.js'
import type { Actor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import { columnKey, type Page, type PageRequest, paginate } from '../db/paginate.js'
import type { DB, WebForms } from '../db/types.js'
import { NotFoundError, ValidationError } from '../errors/domain.js'

export const WEB_FORM_COLUMNS = [
  'id',
  'name',
  'key',
  'allowed_origins',
  'redirect_url',
  'assign_to',
  'created_by',
  'created_at',
  'updated_at',
] as const

export type WebForm = Selectable<WebForms>

export interface WebFormPatch {
  name?: string
  allowed_origins?: string[]
  redirect_url?: string | null
  assign_to?: number | null
}

export interface NewWebForm extends WebFormPatch {
  name: string
}

/** 24 URL-safe characters: public, but not to be guessed. */
function newKey(): string {
  return randomBytes(18).toString('base64url')
}

/** Origins as browsers send them: lower-case scheme and host, no default port. */
function normalizeOrigins(origins: string[]): string[] {
  return origins.map((origin, index) => {
    let parsed: URL
    try {
      parsed = new URL(origin)
    } catch {
      throw ValidationError.field(`allowed_origins.${index}`, 'is not a valid origin')
    }
    // Browsers send one origin and it is compared as it is: a pattern would never match.
    if (parsed.host.includes('*')) {
      throw ValidationError.field(`allowed_origins.${index}`, 'wildcards are not supported: list each origin')
    }
    return parsed.origin
  })
}

/** The audit values of a form: its key is named, never written. */
function auditable(values: Record<string, unknown>): Record<string, unknown> {
  return 'key' in values ? { ...values, key: '[key]' } : values
}

export async function createWebForm(trx: Transaction<DB>, actor: Actor, input: NewWebForm): Promise<WebForm> {
  if (input.assign_to != null) await assertActiveUser(trx, input.assign_to, 'assign_to')
  const form = await trx
    .insertInto('web_forms')
    .values({
      name: input.name.trim(),
      key: newKey(),
      allowed_origins: normalizeOrigins(input.allowed_origins ?? []),
      redirect_url: input.redirect_url ?? null,
      assign_to: input.assign_to ?? null,
      created_by: actor.userId,
    })
    .returning(WEB_FORM_COLUMNS)
    .executeTakeFirstOrThrow()
  await writeAudit(trx, actor, {
    table: 'web_forms',
    recordId: form.id,
    action: 'create',
    oldValues: null,
    newValues: auditable(form),
  })
  return form
}

export async function listWebForms(db: Database, page: PageRequest): Promise<Page<WebForm>> {
  return paginate(db, {
    matching: db.selectFrom('web_forms'),
    select: (matching) => matching.select(WEB_FORM_COLUMNS),
    order: { keys: [columnKey('web_forms.created_at', 'timestamp')], id: 'web_forms.id', direction: 'desc' },
    page,
    filters: {},
  })
}

export async function getWebForm(db: Database, id: number): Promise<WebForm> {
  const form = await db.selectFrom('web_forms').select(WEB_FORM_COLUMNS).where('id', '=', id).executeTakeFirst()
  if (!form) throw new NotFoundError('Form')
  return form
}

async function lockWebForm(trx: Transaction<DB>, id: number): Promise<WebForm> {
  const form = await trx
    .selectFrom('web_forms')
    .select(WEB_FORM_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  if (!form) throw new NotFoundError('Form')
  return form
}

export async function updateWebForm(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  patch: WebFormPatch,
): Promise<WebForm> {
  const current = await lockWebForm(trx, id)
  const normalized = {
    ...patch,
    ...(patch.name !== undefined && { name: patch.name.trim() }),
    ...(patch.allowed_origins !== undefined && { allowed_origins: normalizeOrigins(patch.allowed_origins) }),
  }
  // Arrays compare by their contents.
  const changes = diff(
    { ...current, allowed_origins: current.allowed_origins.join(' ') },
    { ...normalized, allowed_origins: normalized.allowed_origins?.join(' ') },
  )
  if (!changes) return current
  if (changes.set.assign_to != null) await assertActiveUser(trx, changes.set.assign_to, 'assign_to')
  const updated = await trx
    .updateTable('web_forms')
    .set({
      ...normalized,
      allowed_origins: normalized.allowed_origins ?? current.allowed_origins,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returning(WEB_FORM_COLUMNS)
    .executeTakeFirstOrThrow()
  const changed = Object.keys(changes.set) as Array<keyof WebForm>
  await writeAudit(trx, actor, {
    table: 'web_forms',
    recordId: id,
    action: 'update',
    oldValues: Object.fromEntries(changed.map((field) => [field, current[field]])),
    newValues: Object.fromEntries(changed.map((field) => [field, updated[field]])),
  })
  return updated
}

/** A new key: pages posting with the old one get 404 from now on. */
export async function rotateWebFormKey(trx: Transaction<DB>, actor: Actor, id: number): Promise<WebForm> {
  await lockWebForm(trx, id)
  const updated = await trx
    .updateTable('web_forms')
    .set({ key: newKey(), updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(WEB_FORM_COLUMNS)
    .executeTakeFirstOrThrow()
  await writeAudit(trx, actor, {
    table: 'web_forms',
    recordId: id,
    action: 'update',
    oldValues: { key: 'previous' },
    newValues: { key: 'rotated' },
  })
  return updated
}

export async function deleteWebForm(trx: Transaction<DB>, actor: Actor, id: number): Promise<void> {
  const current = await lockWebForm(trx, id)
  await trx.deleteFrom('web_forms').where('id', '=', id).execute()
  await writeAudit(trx, actor, {
    table: 'web_forms',
    recordId: id,
    action: 'delete',
    oldValues: auditable(current),
    newValues: null,
  })
}

export async function webFormByKey(db: Database, key: string): Promise<WebForm | undefined> {
  return db.selectFrom('web_forms').select(WEB_FORM_COLUMNS).where('key', '=', key).executeTakeFirst()
}
