import { sql } from 'kysely'
import type { Database } from '../db/database.js'

const PURGE_BATCH = 1000

/**
 * Deletes the events older than `days` whose work is over: fanned out, no webhook delivery still
 * pending, no mail still to send. Their deliveries and notifications go with them (on delete
 * cascade). In batches, so that no statement holds many row locks for long.
 */
export async function purgeOldEvents(db: Database, days: number): Promise<number> {
  let purged = 0
  for (;;) {
    const result = await db
      .deleteFrom('events')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('events as old')
          .select('old.id')
          .where('old.occurred_at', '<', sql<Date>`now() - make_interval(days => ${days})`)
          .where('old.dispatched_at', 'is not', null)
          .where(({ exists, not, selectFrom }) =>
            not(
              exists(
                selectFrom('webhook_deliveries as delivery')
                  .select('delivery.id')
                  .whereRef('delivery.event_id', '=', 'old.id')
                  .where('delivery.state', '=', 'pending'),
              ),
            ),
          )
          .where(({ exists, not, selectFrom }) =>
            not(
              exists(
                selectFrom('notifications as mail')
                  .select('mail.id')
                  .whereRef('mail.event_id', '=', 'old.id')
                  .where('mail.state', 'in', ['pending', 'sending']),
              ),
            ),
          )
          .orderBy('old.occurred_at')
          .limit(PURGE_BATCH),
      )
      .executeTakeFirst()
    const deleted = Number(result.numDeletedRows)
    purged += deleted
    if (deleted < PURGE_BATCH) return purged
  }
}
