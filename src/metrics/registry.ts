import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client'

/**
 * This process's own series: requests it answered, jobs it ran, logins it refused, and Node's
 * process figures. Each instance counts its own; Prometheus adds them up across instances.
 */
export const processRegistry = new Registry()
collectDefaultMetrics({ register: processRegistry })

const registers = [processRegistry]

export const httpRequests = new Counter({
  name: 'crm_http_requests_total',
  help: 'HTTP requests answered, by method, route pattern and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers,
})

export const httpRequestDuration = new Histogram({
  name: 'crm_http_request_duration_seconds',
  help: 'Time to answer an HTTP request, by method, route pattern and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
})

/** The background jobs counted: a webhook delivery, a mail, a run of the task reminders. */
export type JobKind = 'webhook_delivery' | 'mail' | 'reminder'
const JOB_KINDS: JobKind[] = ['webhook_delivery', 'mail', 'reminder']

export const jobAttempts = new Counter({
  name: 'crm_job_attempts_total',
  help: 'Attempts of background jobs, by kind',
  labelNames: ['kind'] as const,
  registers,
})

export const jobFailures = new Counter({
  name: 'crm_job_failures_total',
  help: 'Failed attempts of background jobs, by kind (a failed attempt may be retried later)',
  labelNames: ['kind'] as const,
  registers,
})

// Every kind shows from the start, at 0, so a rate over it is defined before the first failure.
for (const kind of JOB_KINDS) {
  jobAttempts.inc({ kind }, 0)
  jobFailures.inc({ kind }, 0)
}

export const webhookDeliveryDuration = new Histogram({
  name: 'crm_webhook_delivery_duration_seconds',
  help: 'Time from sending a webhook delivery to its outcome, by outcome (success or failure)',
  labelNames: ['outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
})

export const loginFailures = new Counter({
  name: 'crm_login_failures_total',
  help: 'Refused logins: invalid_credentials, or throttled (too many failures)',
  labelNames: ['reason'] as const,
  registers,
})
loginFailures.inc({ reason: 'invalid_credentials' }, 0)
loginFailures.inc({ reason: 'throttled' }, 0)

/** Runs one attempt of a job, counting it, and its failure when it throws (the error goes on). */
export async function countAttempt<T>(kind: JobKind, run: () => Promise<T>): Promise<T> {
  jobAttempts.inc({ kind })
  try {
    return await run()
  } catch (error) {
    jobFailures.inc({ kind })
    throw error
  }
}

/** Counts one webhook delivery attempt and how long it took. */
export function recordWebhookDelivery(outcome: { ok: boolean; durationMs: number }): void {
  jobAttempts.inc({ kind: 'webhook_delivery' })
  if (!outcome.ok) jobFailures.inc({ kind: 'webhook_delivery' })
  webhookDeliveryDuration.observe({ outcome: outcome.ok ? 'success' : 'failure' }, outcome.durationMs / 1000)
}

/** Counts one answered request under its route pattern (`/leads/:id`), never the raw URL. */
export function observeRequest(method: string, route: string | undefined, status: number, seconds: number): void {
  const labels = { method, route: route ?? 'unmatched', status: String(status) }
  httpRequests.inc(labels)
  httpRequestDuration.observe(labels, seconds)
}
