import { sql } from 'kysely'
import type { Database } from '../db/database.js'

/** Deletes the failure counters whose window has ended: they throttle nothing any more. */
export async function purgeExpiredLoginFailures(db: Database, windowSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('login_failures')
    .where('window_started_at', '<=', sql<Date>`now() - make_interval(secs => ${windowSeconds})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
