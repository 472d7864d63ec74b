import { sql } from 'kysely'
import type { Database } from '../db/database.js'
import { TooManyRequestsError } from '../errors/domain.js'

export interface FormLimits {
  maxPerForm: number
  maxPerAddress: number
  windowSeconds: number
}

/**
 * Counts a post under `key`, in PostgreSQL so that every instance shares the counts, in one
 * statement so that concurrent posts cannot all slip under the limit. A key past its limit is
 * refused until its window (started by its first post) ends.
 */
async function countPost(db: Database, key: string, limit: number, windowSeconds: number): Promise<void> {
  const restart = sql<boolean>`form_submission_counts.window_started_at <= now() - make_interval(secs => ${windowSeconds})`
  const row = await db
    .insertInto('form_submission_counts')
    .values({ key, submissions: 1, window_started_at: sql`now()` })
    .onConflict((conflict) =>
      conflict.column('key').doUpdateSet({
        submissions: sql`case when ${restart} then 1 else form_submission_counts.submissions + 1 end`,
        window_started_at: sql`case when ${restart} then now() else form_submission_counts.window_started_at end`,
      }),
    )
    .returning([
      'submissions',
      sql<number>`ceil(extract(epoch from window_started_at + make_interval(secs => ${windowSeconds}) - now()))`.as(
        'seconds_left',
      ),
    ])
    .executeTakeFirstOrThrow()
  if (row.submissions > limit) {
    throw new TooManyRequestsError(Math.max(1, Number(row.seconds_left)), 'Too many submissions; try again later')
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
