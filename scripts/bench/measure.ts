import os from 'node:os'
import autocannon from 'autocannon'
import { sql } from 'kysely'
import type { Database } from '../../src/db/database.js'
import { log } from './common.js'

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH'
  path: string
  body?: unknown
}

export interface Figures {
  connections: number
  duration_s: number
  requests: number
  rps: number
  latency_ms: { mean: number; p50: number; p97_5: number; p99: number; max: number }
  non2xx: number
  errors: number
  timeouts: number
  /** A few of the non-2xx answers, to see what went wrong. */
  non2xx_samples: string[]
  loadavg_1m: number
}

export async function measure(
  base: string,
  make: () => HttpRequest,
  headers: Record<string, string>,
  connections: number,
  duration: number,
): Promise<Figures> {
  const failures: string[] = []
  const result = await autocannon({
    url: base,
    connections,
    duration,
    timeout: 30,
    requests: [
      {
        setupRequest: (request) => {
          const next = make()
          return {
            ...request,
            method: next.method,
            path: next.path,
            headers: next.body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
            body: next.body === undefined ? undefined : JSON.stringify(next.body),
          }
        },
        onResponse: (status, body) => {
          if ((status < 200 || status > 299) && failures.length < 3) failures.push(`${status} ${body.slice(0, 300)}`)
        },
      },
    ],
  })
  const round = (value: number) => Math.round(value * 100) / 100
  // No answer within the run (a request slower than the run itself): no latency to report.
  const none = result.requests.total === 0
  const latency = (value: number) => (none ? Number.NaN : value)
  return {
    connections,
    duration_s: round(result.duration),
    requests: result.requests.total,
    rps: round(result.requests.total / result.duration),
    latency_ms: {
      mean: latency(round(result.latency.mean)),
      p50: latency(result.latency.p50),
      p97_5: latency(result.latency.p97_5),
      p99: latency(result.latency.p99),
      max: latency(result.latency.max),
    },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx_samples: failures,
    loadavg_1m: round(os.loadavg()[0] ?? 0),
  }
}

/**
 * Waits until neither server has a statement running: autocannon stops counting at the end of a run,
 * but the requests it leaves in flight still hold pool connections and PostgreSQL's CPU, which would
 * otherwise land on the next run (and time out its wait for a connection).
 */
export async function drain(db: Database): Promise<void> {
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    const result = await sql<{ busy: number }>`
      select count(*)::int as busy from pg_stat_activity
      where datname = current_database() and state <> 'idle' and pid <> pg_backend_pid()
        and application_name in ('mini-crm-api', 'mini-crm-bench-floor')`.execute(db)
    if ((result.rows[0]?.busy ?? 0) === 0) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  log('WARNING: statements were still running two minutes after a run')
}
