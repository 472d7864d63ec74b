import { sql } from 'kysely'
import type { Database } from '../db/database.js'
import { TooManyRequestsError } from '../errors/domain.js'

export interface FormLimits {
  maxPerForm: number
  maxPerAddress: number
  windowSeconds: number
}

/**
 * Counts a submission per form and per client address, in PostgreSQL so that every instance shares
 * the counts, in one statement so that concurrent posts cannot all slip under the limit. A key past
 * its limit is refused until its window (started by its first submission) ends.
 */
export async function countSubmission(
  db: Database,
  formId: number,
  address: string,
  limits: FormLimits,
): Promise<void> {
  const formKey = `form:${formId}`
  const addressKey = `address:${address}`
  const restart = sql<boolean>`form_submission_counts.window_started_at <= now() - make_interval(secs => ${limits.windowSeconds})`
  const rows = await db
    .insertInto('form_submission_counts')
    .values([formKey, addressKey].map((key) => ({ key, submissions: 1, window_started_at: sql`now()` })))
    .onConflict((conflict) =>
      conflict.column('key').doUpdateSet({
        submissions: sql`case when ${restart} then 1 else form_submission_counts.submissions + 1 end`,
        window_started_at: sql`case when ${restart} then now() else form_submission_counts.window_started_at end`,
      }),
    )
    .returning([
      'key',
      'submissions',
      sql<number>`ceil(extract(epoch from window_started_at + make_interval(secs => ${limits.windowSeconds}) - now()))`.as(
        'seconds_left',
      ),
    ])
    .execute()
  let retryAfter = 0
  for (const row of rows) {
    const limit = row.key === formKey ? limits.maxPerForm : limits.maxPerAddress
    if (row.submissions > limit) retryAfter = Math.max(retryAfter, Math.max(1, Number(row.seconds_left)))
  }
  if (retryAfter > 0) throw new TooManyRequestsError(retryAfter, 'Too many submissions; try again later')
}

/** Deletes the counts whose window has ended: they throttle nothing any more. */
export async function purgeExpiredSubmissionCounts(db: Database, windowSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('form_submission_counts')
    .where('window_started_at', '<=', sql<Date>`now() - make_interval(secs => ${windowSeconds})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
