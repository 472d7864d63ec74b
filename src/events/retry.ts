/** How long a lease on a claimed job lasts: longer than any one attempt (10 s for a webhook), so a live worker keeps it. */
export const LEASE_SECONDS = 60

/**
 * The wait before the next attempt after `attemptsMade` failed ones, or null when they are used up
 * (a job has one attempt more than there are delays).
 */
export function retryDelayMs(attemptsMade: number, delaysMs: readonly number[]): number | null {
  return delaysMs[attemptsMade - 1] ?? null
}
