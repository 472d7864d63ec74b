import pg from 'pg'
import type { ServerProcess } from '../../tests/helpers/server.js'
import { apiStatements } from './capture.js'
import { ROLES, SALES_NOTE } from './common.js'
import type { Samples } from './data.js'
import { type FloorSpec, type Inputs, type Role, type Statement, writeSteps } from './floor.js'
import type { HttpRequest } from './measure.js'

export interface SqlCheck {
  scenario: string
  role: Role
  same: boolean
  detail?: string
}

const normalize = (statements: Statement[], textsOnly: boolean) =>
  statements
    .map((statement) =>
      JSON.stringify(
        textsOnly
          ? statement.text.replace(/\s+/g, ' ').trim()
          : [statement.text.replace(/\s+/g, ' ').trim(), JSON.parse(JSON.stringify(statement.params))],
      ),
    )
    .sort()

async function traceFloor(floor: ServerProcess, request: HttpRequest): Promise<Statement[]> {
  const response = await fetch(`${floor.url}${request.path}`, {
    method: request.method,
    headers: { 'x-bench-trace': '1', ...(request.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  })
  const body = (await response.json()) as { trace?: Statement[] }
  if (!response.ok || !body.trace) throw new Error(`floor ${request.path}: ${response.status} ${JSON.stringify(body)}`)
  return body.trace
}

/** Sends the floor the capture's own inputs and compares what it ran with what the API's services ran. */
export async function checkFloorSql(floor: ServerProcess, spec: FloorSpec): Promise<SqlCheck[]> {
  const checks: SqlCheck[] = []
  const { sentinels } = spec
  const compare = (scenario: string, role: Role, api: Statement[], floorRan: Statement[], mode: 'same' | 'subset') => {
    const textsOnly = mode === 'subset' || scenario.startsWith('create') || scenario.startsWith('status')
    const expected = normalize(api, textsOnly)
    const actual = normalize(floorRan, textsOnly)
    const same =
      mode === 'same'
        ? JSON.stringify(expected) === JSON.stringify(actual)
        : actual.every((statement) => expected.includes(statement))
    checks.push({
      scenario,
      role,
      same,
      ...(!same && { detail: `API: ${expected.join('\n')}\nfloor: ${actual.join('\n')}` }),
    })
  }
  const monthly = '?month=1'
  for (const role of ROLES) {
    const reads: Array<[string, string, Inputs]> = [
      ['client', `/${role}/clients/${sentinels.clientId}`, { clientId: sentinels.clientId }],
      ['list', `/${role}/leads`, {}],
      ['list_deep', `/${role}/leads?deep=1`, {}],
      ['search', `/${role}/clients/search?q=${sentinels.q}`, { q: sentinels.q }],
      ['search', `/${role}/clients/search?q=${sentinels.qShort}`, { q: sentinels.qShort }],
      ['fulltext', `/${role}/search?q=${encodeURIComponent(sentinels.qFullText)}`, { q: sentinels.qFullText }],
      ['stats', `/${role}/leads/stats`, {}],
      ['stats_month', `/${role}/leads/stats${monthly}`, {}],
      ['agenda', `/${role}/me/agenda`, {}],
    ]
    for (const [scenario, path, inputs] of reads) {
      compare(
        scenario,
        role,
        apiStatements(spec, scenario, role, inputs),
        await traceFloor(floor, { method: 'GET', path }),
        'same',
      )
    }
  }
  const body = { client_id: sentinels.clientId, channel: 'web', sales_notes: SALES_NOTE }
  compare(
    'create',
    'admin',
    writeSteps(spec, 'lead.create'),
    await traceFloor(floor, { method: 'POST', path: '/admin/leads', body }),
    'same',
  )
  // contacted -> quoted -> contacted: the sentinel lead ends as it started.
  for (const status of ['quoted', 'contacted']) {
    compare(
      'status',
      'admin',
      writeSteps(spec, 'lead.status'),
      await traceFloor(floor, { method: 'PATCH', path: `/admin/leads/${sentinels.leadId}/status`, body: { status } }),
      'same',
    )
  }
  return checks
}

export interface PlanRecord {
  scenario: string
  role: Role | 'any'
  q?: string
  statement: string
  execution_ms: number | null
  seq_scan_on: string[]
  plan: string
}

export async function explainReads(url: string, spec: FloorSpec, samples: Samples): Promise<PlanRecord[]> {
  const client = new pg.Client({ connectionString: url, statement_timeout: 600_000 })
  await client.connect()
  const records: PlanRecord[] = []
  const explain = async (scenario: string, role: Role | 'any', statements: Statement[], q?: string) => {
    await client.query('begin')
    try {
      for (const statement of statements) {
        // A setting (GET /search's) is made, not explained.
        if (statement.text.startsWith('set ')) {
          await client.query(statement.text, statement.params)
          continue
        }
        const result = await client.query<{ 'QUERY PLAN': string }>(
          `explain (analyze, buffers) ${statement.text}`,
          statement.params,
        )
        const plan = result.rows.map((row) => row['QUERY PLAN']).join('\n')
        const time = plan.match(/Execution Time: ([\d.]+) ms/)
        // client_search holds the clients' search text: a scan of it reads every live client too.
        const seqScans = [...plan.matchAll(/Seq Scan on (clients|client_search|leads|audit_logs)\b/g)].map(
          (match) => match[1] as string,
        )
        records.push({
          scenario,
          role,
          ...(q !== undefined && { q }),
          statement: statement.text.replace(/\s+/g, ' ').trim().slice(0, 160),
          execution_ms: time ? Number(time[1]) : null,
          seq_scan_on: [...new Set(seqScans)],
          plan,
        })
      }
    } finally {
      await client.query('rollback')
    }
  }
  try {
    const clientId = samples.clientIds[0] as number
    for (const role of ROLES) {
      await explain('client', role, apiStatements(spec, 'client', role, { clientId }))
      await explain('list', role, apiStatements(spec, 'list', role, {}))
      await explain('list_deep', role, apiStatements(spec, 'list_deep', role, {}))
      await explain('stats', role, apiStatements(spec, 'stats', role, {}))
      await explain('stats_month', role, apiStatements(spec, 'stats_month', role, {}))
      await explain('agenda', role, apiStatements(spec, 'agenda', role, {}))
    }
    for (const q of samples.fragments) await explain('search', 'any', apiStatements(spec, 'search', 'admin', { q }), q)
    for (const role of ROLES) {
      for (const q of samples.fullText) await explain('fulltext', role, apiStatements(spec, 'fulltext', role, { q }), q)
    }
  } finally {
    await client.end()
  }
  return records
}
