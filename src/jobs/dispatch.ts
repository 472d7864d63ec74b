import { sql } from 'kysely'
import type { EventActor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import { type DispatchedEvent, planNotifications } from '../notifications/jobs.js'
import { planDeliveries } from '../webhooks/jobs.js'

/**
 * Fans committed events out to their webhook deliveries and mails, in one transaction, oldest
 * first; returns how many events it took. One fan-out runs at a time across instances (an
 * advisory lock: the others skip), so deliveries are planned in the order the events were written.
 */
export async function dispatchEvents(db: Database, limit: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const lock = await sql<{
      locked: boolean
    }>`select pg_try_advisory_xact_lock(hashtext('events:dispatch')) as locked`.execute(trx)
    if (!lock.rows[0]?.locked) return 0
    const events = await trx
      .selectFrom('events')
      .select(['id', 'public_id', 'type', 'resource_key', 'actor', 'data'])
      .where('dispatched_at', 'is', null)
      .orderBy('id')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute()
    if (events.length === 0) return 0
    await planDeliveries(trx, events)
    await planNotifications(
      trx,
      events.map((event) => ({ ...event, actor: event.actor as unknown as EventActor }) as DispatchedEvent),
    )
    await trx
      .updateTable('events')
      .set({ dispatched_at: sql`now()` })
      .where(
        'id',
        'in',
        events.map((event) => event.id),
      )
      .execute()
    return events.length
  })
}
