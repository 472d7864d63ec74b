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

export interface Purge {
  stop(): Promise<void>
}

/**
 * Purges expired counters every `intervalMs`, in this process, so that `login_failures` holds only
 * live windows. Several instances may purge at once: a delete of expired rows is safe to repeat.
 */
export function startLoginFailurePurge(
  db: Database,
  options: { windowSeconds: number; intervalMs: number; onError: (error: Error) => void },
): Purge {
  let running: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    running = purgeExpiredLoginFailures(db, options.windowSeconds).catch(options.onError)
  }, options.intervalMs)
  // It must not keep the process alive on its own.
  timer.unref()
  return {
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}
