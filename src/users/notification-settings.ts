import { sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { NotFoundError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { USER_COLUMNS } from './service.js'

export interface NotificationSettings {
  lead_assigned: boolean
  lead_status_changed: boolean
  inbound_lead: boolean
  daily_digest: boolean
}

const SETTING_COLUMNS = {
  lead_assigned: 'notify_lead_assigned',
  lead_status_changed: 'notify_lead_status_changed',
  inbound_lead: 'notify_inbound_lead',
  daily_digest: 'notify_daily_digest',
} as const

async function readSettings(db: Database | Transaction<DB>, userId: number, lock = false) {
  let query = db
    .selectFrom('users')
    .select([
      'notify_lead_assigned as lead_assigned',
      'notify_lead_status_changed as lead_status_changed',
      'notify_inbound_lead as inbound_lead',
      'notify_daily_digest as daily_digest',
    ])
    .where('id', '=', userId)
  if (lock) query = query.forUpdate()
  const settings = await query.executeTakeFirst()
  if (!settings) throw new NotFoundError('User')
  return settings
}

export function getNotificationSettings(db: Database, userId: number): Promise<NotificationSettings> {
  return readSettings(db, userId)
}

/** The caller's own settings; a change is audited and published as user.updated, like any change of a user. */
export async function updateNotificationSettings(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  patch: Partial<NotificationSettings>,
): Promise<NotificationSettings> {
  const current = await readSettings(trx, actor.userId, true)
  const changes = diff(current, patch)
  if (!changes) return current
  const set = Object.fromEntries(
    Object.entries(changes.set).map(([key, value]) => [SETTING_COLUMNS[key as keyof NotificationSettings], value]),
  )
  const user = await trx
    .updateTable('users')
    .set({ ...set, updated_at: sql`now()` })
    .where('id', '=', actor.userId)
    .returning(USER_COLUMNS)
    .executeTakeFirstOrThrow()
  const oldValues = prefixed(changes.oldValues)
  const newValues = prefixed(changes.newValues)
  await writeAudit(trx, actor, { table: 'users', recordId: actor.userId, action: 'update', oldValues, newValues })
  await writeEvent(trx, actor, {
    type: 'user.updated',
    resource: 'user',
    id: actor.userId,
    old: oldValues,
    new: newValues,
    object: user,
  })
  return { ...current, ...changes.set }
}

/** Audit rows and events name the columns as the users table has them. */
function prefixed(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(values).map(([key, value]) => [SETTING_COLUMNS[key as keyof NotificationSettings], value]),
  )
}
