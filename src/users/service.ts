import { type Selectable, sql, type Transaction } from 'kysely'
import { type AuditValues, diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { PasswordHash } from '../auth/passwords.js'
import type { Database } from '../db/database.js'
import { isUniqueViolation } from '../db/errors.js'
import {
  columnKey,
  nullableColumnKeys,
  type Page,
  type PageRequest,
  paginate,
  parseSort,
  type SortKey,
} from '../db/paginate.js'
import { containsPattern } from '../db/search.js'
import type { DB, UserLocale, UserRole, Users } from '../db/types.js'
import { ConflictError, NotFoundError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { canonicalTimeZone } from '../time-zone.js'
import type { USER_SORTS } from './schemas.js'

export const USER_COLUMNS = [
  'id',
  'username',
  'email',
  'full_name',
  'role',
  'is_active',
  'locale',
  'time_zone',
  'created_at',
  'updated_at',
  'last_login_at',
] as const

export type User = Pick<Selectable<Users>, (typeof USER_COLUMNS)[number]>

export interface NewUser {
  username: string
  passwordHash: PasswordHash
  role: UserRole
  email?: string | null
  full_name?: string | null
  is_active?: boolean
  locale?: UserLocale
  time_zone?: string | null
}

export interface UserPatch {
  username?: string
  passwordHash?: PasswordHash
  role?: UserRole
  email?: string | null
  full_name?: string | null
  is_active?: boolean
  locale?: UserLocale
  time_zone?: string | null
}

export interface UserListFilter extends PageRequest {
  role?: UserRole
  is_active?: boolean
  q?: string
  sort: (typeof USER_SORTS)[number] | `-${(typeof USER_SORTS)[number]}`
}

// A password change shows in the audit log as this marker, never as a hash.
const PASSWORD_CHANGED = 'changed'

export async function listUsers(db: Database, filter: UserListFilter): Promise<Page<User>> {
  let query = db.selectFrom('users')
  if (filter.role) query = query.where('role', '=', filter.role)
  if (filter.is_active !== undefined) query = query.where('is_active', '=', filter.is_active)
  if (filter.q) {
    const pattern = containsPattern(filter.q.toLowerCase())
    query = query.where((eb) =>
      eb.or([eb('username', 'like', pattern), eb('email', 'like', pattern), eb('full_name', 'ilike', pattern)]),
    )
  }
  const { column, direction } = parseSort(filter.sort)
  const keys: Record<typeof column, SortKey[]> = {
    id: [],
    username: [columnKey('users.username', 'text')],
    created_at: [columnKey('users.created_at', 'timestamp')],
    // Never signed in sorts first in ascending order.
    last_login_at: nullableColumnKeys('users.last_login_at', 'timestamp'),
  }
  return paginate(db, {
    matching: query,
    select: (matching) => matching.select(USER_COLUMNS),
    order: { keys: keys[column], id: 'users.id', direction },
    page: filter,
    filters: filter,
  })
}

export async function getUser(db: Database, id: number): Promise<User> {
  const user = await db.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).executeTakeFirst()
  if (!user) throw new NotFoundError('User')
  return user
}

export async function createUser(trx: Transaction<DB>, actor: Actor, input: NewUser): Promise<User> {
  const user = await translateUniqueViolations(() =>
    trx
      .insertInto('users')
      .values({
        username: input.username.toLowerCase(),
        password_hash: input.passwordHash,
        role: input.role,
        email: input.email?.toLowerCase() ?? null,
        full_name: input.full_name ?? null,
        is_active: input.is_active ?? true,
        ...(input.locale && { locale: input.locale }),
        time_zone: timeZoneOf(input.time_zone) ?? null,
      })
      .returning(USER_COLUMNS)
      .executeTakeFirstOrThrow(),
  )
  await writeAudit(trx, actor, {
    table: 'users',
    recordId: user.id,
    action: 'create',
    oldValues: null,
    newValues: auditRow(user),
  })
  await writeEvent(trx, actor, {
    type: 'user.created',
    resource: 'user',
    id: user.id,
    old: null,
    new: user,
    object: user,
  })
  return user
}

export async function updateUser(trx: Transaction<DB>, actor: Actor, id: number, patch: UserPatch): Promise<User> {
  const { passwordHash, ...fields } = patch
  const normalized = {
    ...fields,
    ...(fields.username !== undefined && { username: fields.username.toLowerCase() }),
    ...(fields.email && { email: fields.email.toLowerCase() }),
    ...(fields.time_zone !== undefined && { time_zone: timeZoneOf(fields.time_zone) }),
  }
  const losesAdmin = normalized.role !== undefined || normalized.is_active === false
  if (losesAdmin) await lockAdminSet(trx)
  const current = await trx.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).forUpdate().executeTakeFirst()
  if (!current) throw new NotFoundError('User')

  const changes = diff(current, normalized)
  if (!changes && !passwordHash) return current

  const set = changes?.set ?? {}
  if (set.is_active === false && id === actor.userId) {
    throw new ConflictError('cannot_deactivate_self', 'You cannot deactivate your own account')
  }
  const stopsBeingAdmin =
    current.role === 'admin' && current.is_active && (set.role !== undefined || set.is_active === false)
  if (stopsBeingAdmin) await assertAnotherActiveAdmin(trx, id)

  // A new password, role or activity state revokes the tokens issued before it.
  const revokesTokens = passwordHash !== undefined || set.role !== undefined || set.is_active !== undefined
  const updated = await translateUniqueViolations(() =>
    trx
      .updateTable('users')
      .set({
        ...set,
        ...(passwordHash !== undefined && { password_hash: passwordHash }),
        ...(revokesTokens && { token_version: sql<number>`token_version + 1` }),
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .returning(USER_COLUMNS)
      .executeTakeFirstOrThrow(),
  )
  const oldValues = changes?.oldValues ?? {}
  const newValues = { ...changes?.newValues, ...(passwordHash !== undefined && { password: PASSWORD_CHANGED }) }
  await writeAudit(trx, actor, { table: 'users', recordId: id, action: 'update', oldValues, newValues })
  await writeEvent(trx, actor, {
    type: 'user.updated',
    resource: 'user',
    id,
    old: oldValues,
    new: newValues,
    object: updated,
  })
  return updated
}

/**
 * `releaseDependents` lets go of what refers to the user (the leads assigned to them, each with its
 * audit row) before the row goes: given by the caller, so that users depend on no other feature.
 */
export async function deleteUser(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  releaseDependents: (trx: Transaction<DB>, actor: Actor, userId: number) => Promise<unknown>,
): Promise<void> {
  if (id === actor.userId) throw new ConflictError('cannot_delete_self', 'You cannot delete your own account')
  await lockAdminSet(trx)
  const current = await trx.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).forUpdate().executeTakeFirst()
  if (!current) throw new NotFoundError('User')
  if (current.role === 'admin' && current.is_active) await assertAnotherActiveAdmin(trx, id)
  await releaseDependents(trx, actor, id)
  await trx.deleteFrom('users').where('id', '=', id).execute()
  await writeAudit(trx, actor, {
    table: 'users',
    recordId: id,
    action: 'delete',
    oldValues: auditRow(current),
    newValues: null,
  })
  await writeEvent(trx, actor, { type: 'user.deleted', resource: 'user', id, old: current, new: null, object: current })
}

/**
 * The user's row as GET shows it, locked until the transaction ends (for an If-Match check); the
 * admin set first, in the order every change of a user takes its locks.
 */
export async function lockUser(trx: Transaction<DB>, id: number): Promise<User> {
  await lockAdminSet(trx)
  const user = await trx.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).forUpdate().executeTakeFirst()
  if (!user) throw new NotFoundError('User')
  return user
}

/** Serialises every change that could leave no active admin, so two of them cannot both pass the check. */
async function lockAdminSet(trx: Transaction<DB>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('users:active-admins'))`.execute(trx)
}

async function assertAnotherActiveAdmin(trx: Transaction<DB>, exceptId: number): Promise<void> {
  const other = await trx
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('is_active', '=', true)
    .where('id', '!=', exceptId)
    .limit(1)
    .executeTakeFirst()
  if (!other) {
    throw new ConflictError('last_admin', 'The last active admin cannot be deleted, deactivated or demoted')
  }
}

async function translateUniqueViolations<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    if (isUniqueViolation(error, 'users_username_key')) {
      throw new ConflictError('username_taken', 'A user with this username already exists')
    }
    if (isUniqueViolation(error, 'users_email_key')) {
      throw new ConflictError('email_taken', 'A user with this email already exists')
    }
    throw error
  }
}

/** The zone as the runtime spells it; a 400 naming time_zone when it knows no such zone. */
function timeZoneOf(name: string | null | undefined): string | null | undefined {
  if (name == null) return name
  const zone = canonicalTimeZone(name)
  if (!zone) throw ValidationError.field('time_zone', `is not an IANA time zone (e.g. America/Caracas): ${name}`)
  return zone
}

function auditRow(user: User): AuditValues {
  return { ...user }
}
