import type { PlanRecord, SqlCheck } from './checks.js'
import type { monthRange, Sizes } from './data.js'
import type { Role, Statement } from './floor.js'
import type { Options } from './options.js'
import type { ScenarioResult } from './scenarios.js'

export const fixed = (value: number | undefined, digits = 0) =>
  value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits)

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, index) =>
    Math.max(header.length, ...rows.map((row) => (row[index] ?? '').length)),
  )
  const line = (cells: string[]) =>
    `| ${cells.map((cell, index) => (index < 2 ? cell.padEnd(widths[index] ?? 0) : cell.padStart(widths[index] ?? 0))).join(' | ')} |`
  return [line(headers), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

export function printReport(report: Report): void {
  const { results } = report
  const out: string[] = []
  if (report.machine.loadavg_1m_at_start > 0.5 * report.machine.cpus) {
    out.push(
      `NOTE: the load average was ${report.machine.loadavg_1m_at_start} when the benchmark started: something else was busy.`,
    )
  }
  out.push(
    `Mini CRM API benchmark: ${report.data.clients.toLocaleString('en-US')} clients, ${report.data.leads.toLocaleString('en-US')} leads; ` +
      `${report.options.connections} connections, ${report.options.duration} s a scenario; ${report.machine.cpus} CPUs (${report.machine.cpu_model})`,
    '',
  )
  const mark = (met: boolean | undefined) => (met === undefined ? '' : met ? ' ok' : ' MISS')
  out.push(
    table(
      [
        'scenario',
        'role',
        'API req/s',
        'p50 ms',
        'p97.5 ms',
        'p99 ms',
        'non-2xx',
        'floor req/s',
        'floor p99 ms',
        'ratio',
        'load 1m',
      ],
      results.flatMap((result) => {
        const rows = [
          [
            result.scenario,
            result.role,
            fixed(result.api.rps),
            fixed(result.api.latency_ms.p50),
            fixed(result.api.latency_ms.p97_5),
            fixed(result.api.latency_ms.p99),
            String(result.api.non2xx + result.api.errors),
            fixed(result.floor.rps),
            fixed(result.floor.latency_ms.p99),
            `${fixed(result.ratio, 2)}${mark(result.targets.ratio_met)}`,
            result.load_1m.join('→'),
          ],
        ]
        if (result.floor_full) {
          rows.push([
            `${result.scenario} (floor: all API statements)`,
            result.role,
            '',
            '',
            '',
            '',
            '',
            fixed(result.floor_full.rps),
            fixed(result.floor_full.latency_ms.p99),
            fixed(result.ratio_full, 2),
            '',
          ])
        }
        return rows
      }),
    ),
    '',
    'One connection (a request alone):',
    table(
      [
        'scenario',
        'role',
        'API mean ms',
        'API p99 ms',
        'floor mean ms',
        'floor p99 ms',
        'p99 target ms',
        `p99@${report.options.connections}`,
        'p99@1',
        'load 1m',
      ],
      results
        .filter((result) => result.api_single)
        .map((result) => [
          result.scenario,
          result.role,
          fixed(result.api_single?.latency_ms.mean, 1),
          fixed(result.api_single?.latency_ms.p99),
          fixed(result.floor_single?.latency_ms.mean, 1),
          fixed(result.floor_single?.latency_ms.p99),
          fixed(result.targets.p99_ms),
          mark(result.targets.p99_met_under_load).trim(),
          mark(result.targets.p99_met_single).trim(),
          result.load_1m.join('→'),
        ]),
    ),
  )
  const login = results.find((result) => result.id === 'login')
  if (login?.api_single) {
    out.push(
      '',
      `Login: ${fixed(login.api_single.latency_ms.mean, 1)} ms a login alone (floor, argon2 verify + select: ` +
        `${fixed(login.floor_single?.latency_ms.mean, 1)} ms); ${fixed(login.api.rps)} logins/s with ${report.options.connections} connections.`,
    )
  }
  const seqScans = report.plans.filter((plan) => plan.seq_scan_on.length > 0)
  out.push(
    '',
    seqScans.length === 0
      ? 'Plans: no Seq Scan on clients, client_search, leads or audit_logs.'
      : `Plans: Seq Scan on clients, client_search, leads or audit_logs in ${[
          ...new Set(
            seqScans.map(
              (plan) => `${plan.scenario}/${plan.role}${plan.q ? ` q=${plan.q}` : ''} (${plan.seq_scan_on.join(', ')})`,
            ),
          ),
        ].join('; ')}`,
  )
  const slowest = new Map<string, PlanRecord>()
  for (const plan of report.plans) {
    const key = `${plan.scenario}/${plan.role}`
    const total = (plan.execution_ms ?? 0) + (slowest.get(key)?.execution_ms ?? 0)
    slowest.set(key, { ...plan, execution_ms: total })
  }
  out.push(
    `EXPLAIN ANALYZE execution time summed over a read's statements: ${[...slowest]
      .map(([key, plan]) => `${key} ${fixed(plan.execution_ms ?? undefined, 1)} ms`)
      .join(', ')} (search: all ${report.samples.fragments.length} fragments)`,
  )
  const bad = report.sql_checks.filter((check) => !check.same)
  out.push(
    bad.length === 0
      ? 'Floor SQL: the same statements and parameters as the API for every scenario.'
      : `Floor SQL DIFFERS for ${bad.map((check) => `${check.scenario}/${check.role}`).join(', ')}`,
  )
  console.log(out.join('\n'))
}

export interface Report {
  options: Options
  machine: {
    cpus: number
    cpu_model: string
    loadavg_1m_at_start: number
    memory_gb: number
    node: string
    postgres: string
    postgres_settings: Record<string, string>
  }
  data: Sizes
  samples: { fragments: string[]; client_ids: number; flip_pool: number; month: ReturnType<typeof monthRange> }
  users: Record<Role, string>
  results: ScenarioResult[]
  sql_checks: SqlCheck[]
  plans: PlanRecord[]
  sql: Record<string, Statement>
  seconds: number
}
