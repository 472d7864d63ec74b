import { purgeExpiredLoginFailures } from '../auth/login-failures-purge.js'
import type { Database } from '../db/database.js'
import { purgeExpiredIdempotencyKeys } from '../http/idempotency.js'

export interface Purge {
  stop(): Promise<void>
}

/**
 * Every `intervalMs`, in this process, deletes what has expired: login failure counters whose window
 * has ended and Idempotency-Keys past their 24 hours. Several instances may purge at once: a delete
 * of expired rows is safe to repeat.
 */
export function startPurges(
  db: Database,
  options: { loginWindowSeconds: number; intervalMs: number; onError: (error: Error, what: string) => void },
): Purge {
  let running: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    running = Promise.all([
      purgeExpiredLoginFailures(db, options.loginWindowSeconds).catch((error) =>
        options.onError(error, 'expired login failures'),
      ),
      purgeExpiredIdempotencyKeys(db).catch((error) => options.onError(error, 'expired idempotency keys')),
    ])
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
