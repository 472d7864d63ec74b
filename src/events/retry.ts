/** How long a claimed mail is leased: longer than any one send (nodemailer's timeouts are set below it). */
export const MAIL_LEASE_SECONDS = 60

/** A claimed webhook delivery is leased for its timeout and this margin: a live worker always finishes first. */
export const DELIVERY_LEASE_MARGIN_MS = 5_000

/**
 * The wait before the next attempt after `attemptsMade` failed ones, or null when they are used up
 * (a job has one attempt more than there are delays).
 */
export function retryDelayMs(attemptsMade: number, delaysMs: readonly number[]): number | null {
  return delaysMs[attemptsMade - 1] ?? null
}
