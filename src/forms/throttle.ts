import { sql } from 'kysely'
import type { Database } from '../db/database.js'
import { countInWindow, type WindowCounterTable } from '../db/window-counter.js'
import { TooManyRequestsError } from '../errors/domain.js'

const SUBMISSIONS: WindowCounterTable = { table: 'form_submission_counts', count: 'submissions' }

export interface FormLimits {
  maxPerForm: number
  maxPerAddress: number
  windowSeconds: number
}

/** Counts a post under `key`; a key past its limit is refused until its window ends. */
async function countPost(db: Database, key: string, limit: number, windowSeconds: number): Promise<void> {
  const [counted] = await countInWindow(db, SUBMISSIONS, [key], windowSeconds)
  if (counted && counted.count > limit) {
    throw new TooManyRequestsError(counted.secondsLeft, 'Too many submissions; try again later')
  }
}

/** Every post from a client address, across forms, valid or not: junk is throttled where it comes from. */
export function countPostFromAddress(db: Database, address: string, limits: FormLimits): Promise<void> {
  return countPost(db, `address:${address}`, limits.maxPerAddress, limits.windowSeconds)
}

/**
 * The posts a form takes (valid, not a robot's): only those, so that junk from many addresses
 * cannot shut the form for everyone.
 */
export function countAcceptedPost(db: Database, formId: number, limits: FormLimits): Promise<void> {
  return countPost(db, `form:${formId}`, limits.maxPerForm, limits.windowSeconds)
}

/** Deletes the counts whose window has ended: they throttle nothing any more. */
export async function purgeExpiredSubmissionCounts(db: Database, windowSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('form_submission_counts')
    .where('window_started_at', '<=', sql<Date>`now() - make_interval(secs => ${windowSeconds})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
