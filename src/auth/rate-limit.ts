import type { FastifyReply } from 'fastify'
import { sql } from 'kysely'
import type { Database } from '../db/database.js'
import { countInWindow, type WindowCounterTable } from '../db/window-counter.js'
import { TooManyRequestsError } from '../errors/domain.js'
import type { Actor } from './actor.js'

const REQUESTS: WindowCounterTable = { table: 'request_counts', count: 'requests' }
const WINDOW_SECONDS = 60
// The policy's name in the RateLimit-Policy and RateLimit headers (IETF httpapi draft, structured fields).
const POLICY = '"per-minute"'

/**
 * Counts one request of the caller (a user's tokens together, or one API key) in this minute's
 * window, shared by every instance, and says so in `RateLimit-Policy` and `RateLimit`; past the
 * limit, 429 rate_limited with Retry-After. `limit` is the key's own, or RATE_LIMIT_PER_MINUTE.
 */
export async function countRequest(db: Database, reply: FastifyReply, actor: Actor, limit: number): Promise<void> {
  const key = actor.via?.type === 'api_key' ? `key:${actor.via.id}` : `user:${actor.userId}`
  const [counted] = await countInWindow(db, REQUESTS, [key], WINDOW_SECONDS)
  const { count, secondsLeft } = counted as { count: number; secondsLeft: number }
  reply.header('ratelimit-policy', `${POLICY};q=${limit};w=${WINDOW_SECONDS}`)
  reply.header('ratelimit', `${POLICY};r=${Math.max(0, limit - count)};t=${secondsLeft}`)
  if (count > limit) {
    throw new TooManyRequestsError(
      secondsLeft,
      `More than ${limit} requests this minute ${actor.via?.type === 'api_key' ? 'with this API key' : 'by this user'}; try again in ${secondsLeft} s`,
      'rate_limited',
    )
  }
}

/** Deletes the request counters whose minute has ended. */
export async function purgeEndedRequestCounts(db: Database): Promise<number> {
  const result = await db
    .deleteFrom('request_counts')
    .where('window_started_at', '<=', sql<Date>`now() - make_interval(secs => ${WINDOW_SECONDS})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
