import type { FastifyBaseLogger } from 'fastify'
import { sql, type Transaction, type UpdateObject } from 'kysely'
import type { EventActor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { MAIL_LEASE_SECONDS, retryDelayMs } from '../events/retry.js'
import { canonicalTimeZone } from '../time-zone.js'
import type { Mailer } from './mailer.js'
import { type NotifiableEvent, type NotificationKind, recipientsOf } from './rules.js'
import { type MailContext, renderMail } from './templates.js'

const SETTING_OF = {
  lead_assigned: 'notify_lead_assigned',
  lead_status_changed: 'notify_lead_status_changed',
  inbound_lead: 'notify_inbound_lead',
} as const

export interface DispatchedEvent extends NotifiableEvent {
  id: number
  public_id: string
}

/**
 * Plans the mails of freshly committed events, in the fan-out's transaction: active users with an
 * email and the setting on. The unique (subject_key, user_id) keeps a second run from adding a mail.
 */
export async function planNotifications(trx: Transaction<DB>, events: DispatchedEvent[]): Promise<void> {
  const rows: Array<{ subject_key: string; user_id: number; kind: string; event_id: number }> = []
  for (const event of events) {
    for (const recipients of recipientsOf(event)) {
      let users = trx.selectFrom('users').select('id').where('is_active', '=', true).where('email', 'is not', null)
      if (recipients.kind !== 'task_due') users = users.where(SETTING_OF[recipients.kind], '=', true)
      users =
        'userId' in recipients ? users.where('id', '=', recipients.userId) : users.where('role', 'in', recipients.roles)
      for (const user of await users.execute()) {
        rows.push({ subject_key: event.public_id, user_id: user.id, kind: recipients.kind, event_id: event.id })
      }
    }
  }
  if (rows.length === 0) return
  await trx
    .insertInto('notifications')
    .values(rows)
    .onConflict((conflict) => conflict.constraint('notifications_once').doNothing())
    .execute()
}

/** Mails every active admin with an email about something no event carries (a webhook disabled). */
export async function notifyAdmins(
  trx: Transaction<DB>,
  subjectKey: string,
  kind: NotificationKind,
  data: Record<string, unknown>,
): Promise<void> {
  await trx
    .insertInto('notifications')
    .columns(['subject_key', 'user_id', 'kind', 'data'])
    .expression((eb) =>
      eb
        .selectFrom('users')
        .select([
          sql.lit(subjectKey).as('subject_key'),
          'id',
          sql.lit(kind).as('kind'),
          sql`${JSON.stringify(data)}::jsonb`.as('data'),
        ])
        .where('role', '=', 'admin')
        .where('is_active', '=', true)
        .where('email', 'is not', null),
    )
    .onConflict((conflict) => conflict.constraint('notifications_once').doNothing())
    .execute()
}

const INTERRUPTED = 'interrupted while sending; not sent again, so that nobody gets it twice'

export interface MailJobOptions {
  mailer: Mailer
  publicUrl: string
  /** The zone of the times in a mail to a user whose time_zone is null. */
  defaultTimeZone: string
  retryDelaysMs: number[]
  log: FastifyBaseLogger
}

/**
 * Claims due mails, sends them and records the outcome; returns how many it claimed. A claim is
 * committed as `sending` before the mail leaves, so a worker that dies mid-send leaves a row that
 * is marked failed rather than sent twice.
 */
export async function sendDueNotifications(db: Database, options: MailJobOptions, limit: number): Promise<number> {
  await db
    .updateTable('notifications')
    .set({ state: 'failed', last_error: INTERRUPTED, locked_until: null })
    .where('state', '=', 'sending')
    .where('locked_until', '<', sql<Date>`now()`)
    .execute()
  const claimed = await db
    .updateTable('notifications')
    .set({
      state: 'sending',
      attempts: sql`attempts + 1`,
      locked_until: sql`now() + make_interval(secs => ${MAIL_LEASE_SECONDS})`,
    })
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('notifications')
        .select('id')
        .where('state', '=', 'pending')
        .where('next_attempt_at', '<=', sql<Date>`now()`)
        .orderBy('next_attempt_at')
        .orderBy('id')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returning(['id', 'user_id', 'kind', 'event_id', 'data', 'attempts'])
    .execute()
  if (claimed.length === 0) return 0

  const users = await db
    .selectFrom('users')
    .select(['id', 'username', 'full_name', 'email', 'locale', 'time_zone', 'is_active'])
    .where(
      'id',
      'in',
      claimed.map((row) => row.user_id),
    )
    .execute()
  const eventIds = claimed.flatMap((row) => (row.event_id === null ? [] : [row.event_id]))
  const events =
    eventIds.length === 0
      ? []
      : await db.selectFrom('events').select(['id', 'actor', 'data']).where('id', 'in', eventIds).execute()
  const userOf = new Map(users.map((user) => [user.id, user]))
  const eventOf = new Map(events.map((event) => [event.id, event]))

  await Promise.all(
    claimed.map(async (row) => {
      const user = userOf.get(row.user_id)
      if (!user?.email || !user.is_active) {
        await finish(db, row.id, { state: 'skipped', last_error: 'the user has no email or is inactive' })
        return
      }
      const event = row.event_id === null ? undefined : eventOf.get(row.event_id)
      const eventData = event?.data as
        | { object?: MailContext['lead']; old?: { status?: MailContext['oldStatus'] } | null }
        | undefined
      const isTask = row.kind === 'task_due'
      const mail = renderMail(row.kind as NotificationKind, user.locale, {
        publicUrl: options.publicUrl,
        recipientName: user.full_name ?? user.username,
        actorName: (event?.actor as EventActor | undefined)?.name ?? 'system',
        // A zone the database holds but this runtime does not know reads in the default one.
        timeZone: (user.time_zone && canonicalTimeZone(user.time_zone)) || options.defaultTimeZone,
        lead: isTask ? undefined : eventData?.object,
        task: isTask ? (eventData?.object as unknown as MailContext['task']) : undefined,
        oldStatus: eventData?.old?.status,
        webhook: row.kind === 'webhook_disabled' ? (row.data as MailContext['webhook']) : undefined,
        digest: row.kind === 'daily_digest' ? (row.data as unknown as MailContext['digest']) : undefined,
      })
      try {
        await options.mailer.send(user.email, mail)
        await finish(db, row.id, { state: 'sent', sent_at: sql<Date>`now()`, last_error: null })
      } catch (error) {
        const delay = retryDelayMs(row.attempts, options.retryDelaysMs)
        const message = (error as Error).message.slice(0, 500)
        options.log.warn({ notification: row.id, attempts: row.attempts, err: { message } }, 'mail not sent')
        await finish(
          db,
          row.id,
          delay === null
            ? { state: 'failed', last_error: message }
            : {
                state: 'pending',
                last_error: message,
                next_attempt_at: sql<Date>`now() + make_interval(secs => ${delay / 1000})`,
              },
        )
      }
    }),
  )
  return claimed.length
}

async function finish(db: Database, id: number, outcome: UpdateObject<DB, 'notifications'>): Promise<void> {
  await db
    .updateTable('notifications')
    .set({ ...outcome, locked_until: null })
    .where('id', '=', id)
    .execute()
}
