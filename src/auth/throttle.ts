import { sql } from 'kysely'
import type { Database } from '../db/database.js'
import { countInWindow, type WindowCounterTable } from '../db/window-counter.js'
import { TooManyRequestsError } from '../errors/domain.js'

const FAILURES: WindowCounterTable = { table: 'login_failures', count: 'failures' }

export interface ThrottleLimits {
  maxFailuresPerUser: number
  maxFailuresPerAddress: number
  windowSeconds: number
}

export interface ThrottleKeys {
  user: string
  address: string
}

/**
 * Failed logins are counted in PostgreSQL per username and per client address, so every
 * instance sees the same counters and they survive a restart. A key that reached its limit
 * is refused until its window (started by its first failure) ends.
 *
 * An attempt is counted before its password is checked, in one statement, so that concurrent
 * attempts cannot all pass a check that none of them has been counted in yet. An attempt that
 * finds a key over its limit is refused and counts for nothing: its transaction rolls back.
 */
export async function reserveAttempt(db: Database, keys: ThrottleKeys, limits: ThrottleLimits): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const counted = await countInWindow(trx, FAILURES, [userKey(keys), addressKey(keys)], limits.windowSeconds)
    let retryAfter = 0
    for (const row of counted) {
      const limit = row.key === userKey(keys) ? limits.maxFailuresPerUser : limits.maxFailuresPerAddress
      if (row.count > limit) retryAfter = Math.max(retryAfter, row.secondsLeft)
    }
    if (retryAfter > 0) throw new TooManyRequestsError(retryAfter)
  })
}

/** The attempt was right after all: it gives back what reserveAttempt counted, one key at a time. */
export async function releaseAttempt(db: Database, keys: ThrottleKeys): Promise<void> {
  for (const key of [userKey(keys), addressKey(keys)]) {
    await db
      .updateTable('login_failures')
      .set({ failures: sql`failures - 1` })
      .where('key', '=', key)
      .where('failures', '>', 0)
      .execute()
  }
}

/** A successful login clears its username's count; the address's count stays. */
export async function clearUserFailures(db: Database, keys: ThrottleKeys): Promise<void> {
  await db.deleteFrom('login_failures').where('key', '=', userKey(keys)).execute()
}

const userKey = (keys: ThrottleKeys) => `user:${keys.user}`
const addressKey = (keys: ThrottleKeys) => `address:${keys.address}`
