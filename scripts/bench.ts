/**
 * `npm run bench`: load-tests the API against a real PostgreSQL (DATABASE_URL) and compares every
 * route with its floor, the same SQL sent by a bare Fastify + pg server (scripts/bench-floor.ts).
 *
 *   DATABASE_URL=postgres://... npm run bench -- [--clients N] [--leads M] [--duration S]
 *     [--connections C] [--json] [--skip-seed]
 *
 * 1. Migrates, and seeds (scripts/seed-demo.ts) whatever is missing for N clients and M leads.
 * 2. Makes sure of a bench admin (`bench.admin`, a new password each run) and a sales user with leads.
 * 3. Captures, in-process, the statements the API's services send for one input of each route,
 *    hands them to the floor, and checks with a traced request that the floor sends the same.
 * 4. Runs EXPLAIN (ANALYZE, BUFFERS) on each read's statements.
 * 5. Starts the API (`node --import tsx src/server.ts`, production mode) and the floor, each with a
 *    pool of C connections, and measures each scenario with autocannon: C connections for
 *    throughput and latency under load, then one connection for the latency of a request alone.
 * Logs go to stderr; stdout gets the tables, or with --json one JSON document.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { systemActor } from '../src/auth/actor.js'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import { hashPassword, verifyPassword } from '../src/auth/passwords.js'
import { login } from '../src/auth/service.js'
import { getClient, searchClients } from '../src/clients/service.js'
import { type Database, openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import type { DB } from '../src/db/types.js'
import { changeLeadStatus, createLead, leadStats, leadsOfClient, listLeads } from '../src/leads/service.js'
import { createOrResetAdmin } from '../src/users/bootstrap.js'
import { createUser, type PasswordHash, updateUser } from '../src/users/service.js'
import { bind, type FloorSpec, type Inputs, type Role, STATEMENT_NAMES, type Statement } from './bench-floor.js'
import { DEMO_PASSWORD, seedDemo } from './seed-demo.js'

const ROOT = join(import.meta.dirname, '..')
const ROLES: Role[] = ['admin', 'sales']
const BENCH_ADMIN = 'bench.admin'
const BENCH_SALES = 'bench.sales'
const SALES_NOTE = 'Llamar el lunes'
/** Inputs the statements are captured with; the floor puts each request's own in their place. */
const SENTINEL_Q = 'qqzz'
const SENTINEL_STATUS = 'quoted'

// The targets the issue sets for reads at this data size, and for the API ÷ floor ratio.
const P99_TARGET_MS = { list: 30, search: 50, stats: 300, stats_month: 50 } as const
const READ_RATIO_TARGET = 0.7
const WRITE_RATIO_TARGET = 0.6

interface Options {
  clients: number
  leads: number
  duration: number
  connections: number
  json: boolean
  skipSeed: boolean
}

const USAGE =
  'usage: DATABASE_URL=postgres://... npm run bench -- [--clients N=100000] [--leads M=500000] ' +
  '[--duration S=10] [--connections C=32] [--json] [--skip-seed]'

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '100000' },
      leads: { type: 'string', default: '500000' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      json: { type: 'boolean', default: false },
      'skip-seed': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const count = (name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const cleaned = text.replaceAll('_', '')
    const value = Number(cleaned)
    if (!/^\d+$/.test(cleaned) || value < min || value > max) {
      throw new Error(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`)
    }
    return value
  }
  return {
    clients: count('clients', values.clients, 1),
    leads: count('leads', values.leads, 1),
    duration: count('duration', values.duration, 1, 3600),
    connections: count('connections', values.connections, 1, 200),
    json: values.json,
    skipSeed: values['skip-seed'],
  }
}

// --- Data ------------------------------------------------------------------------------------------

interface Sizes {
  clients: number
  leads: number
  audit_logs: number
  sizes_mb: Record<string, number>
}

async function countRows(db: Database): Promise<Sizes> {
  const counts = await sql<{ clients: number; leads: number; audit_logs: number }>`
    select (select count(*) from clients) as clients, (select count(*) from leads) as leads,
      (select count(*) from audit_logs) as audit_logs`.execute(db)
  const sizes = await sql<{ name: string; mb: number }>`
    select relname as name, round(pg_total_relation_size(oid) / 1048576.0, 1)::float8 as mb
    from pg_class where relname in ('clients', 'leads', 'audit_logs')`.execute(db)
  const row = counts.rows[0] ?? { clients: 0, leads: 0, audit_logs: 0 }
  return {
    clients: Number(row.clients),
    leads: Number(row.leads),
    audit_logs: Number(row.audit_logs),
    sizes_mb: Object.fromEntries(sizes.rows.map((size) => [size.name, Number(size.mb)])),
  }
}

async function seedMissing(db: Database, options: Options): Promise<void> {
  const before = await countRows(db)
  const clients = Math.max(0, options.clients - before.clients)
  const leads = Math.max(0, options.leads - before.leads)
  log(`database has ${before.clients} clients and ${before.leads} leads`)
  if (clients === 0 && leads === 0) return
  if (options.skipSeed) {
    log(`--skip-seed: measuring with what is there (${clients} clients and ${leads} leads short)`)
    return
  }
  log(`seeding ${clients} clients and ${leads} leads`)
  await seedDemo(db, { clients, leads, salesUsers: 5 }, (message) => log(`seed: ${message}`))
}

interface BenchUser {
  id: number
  username: string
  password: string
}

/** bench.admin with a new password, and the active sales user with leads (demo.sales1 when there). */
async function prepareUsers(db: Database): Promise<Record<Role, BenchUser>> {
  const adminPassword = randomBytes(18).toString('base64url')
  await createOrResetAdmin(db, BENCH_ADMIN, adminPassword)
  const admin = await db.selectFrom('users').select('id').where('username', '=', BENCH_ADMIN).executeTakeFirstOrThrow()

  let sales = await db
    .selectFrom('users')
    .select(['id', 'username', 'password_hash'])
    .where('role', '=', 'sales')
    .where('is_active', '=', true)
    .where((eb) => eb.exists(eb.selectFrom('leads').select('leads.id').whereRef('leads.assigned_to', '=', 'users.id')))
    .orderBy(sql`username = 'demo.sales1'`, 'desc')
    .orderBy('id')
    .executeTakeFirst()
  if (!sales) {
    log(`no sales user has leads: creating ${BENCH_SALES}, whose scoped reads will find nothing`)
    const passwordHash = (await hashPassword(DEMO_PASSWORD)) as PasswordHash
    await db
      .transaction()
      .execute((trx) =>
        createUser(trx, systemActor('bench'), { username: BENCH_SALES, passwordHash, role: 'sales' }).catch(() => null),
      )
    sales = await db
      .selectFrom('users')
      .select(['id', 'username', 'password_hash'])
      .where('username', '=', BENCH_SALES)
      .executeTakeFirstOrThrow()
  }
  if (!(await verifyPassword(sales.password_hash, DEMO_PASSWORD))) {
    log(`setting the password of ${sales.username} to the demo password`)
    const passwordHash = (await hashPassword(DEMO_PASSWORD)) as PasswordHash
    const id = sales.id
    await db.transaction().execute((trx) => updateUser(trx, systemActor('bench'), id, { passwordHash }))
  }
  return {
    admin: { id: admin.id, username: BENCH_ADMIN, password: adminPassword },
    sales: { id: sales.id, username: sales.username, password: DEMO_PASSWORD },
  }
}

interface Samples {
  clientIds: number[]
  fragments: string[]
  /** Leads in contacted or quoted, flipped between the two by the status scenario. */
  flipPool: Array<{ id: number; status: 'contacted' | 'quoted' }>
  sentinels: FloorSpec['sentinels']
}

async function sample(db: Database, users: Record<Role, BenchUser>): Promise<Samples> {
  const clientIds = (
    await sql<{ id: number }>`select id from clients order by random() limit 10000`.execute(db)
  ).rows.map((row) => row.id)
  const names = (
    await sql<{ contact_name: string }>`select contact_name from clients order by random() limit 300`.execute(db)
  ).rows.map((row) => row.contact_name)
  const fragments = new Set<string>()
  for (const name of names) {
    const words = name
      .toLowerCase()
      .split(/\s+/)
      .filter((word) => /^\p{L}{3,}$/u.test(word))
    const word = words[Math.floor(Math.random() * words.length)]
    if (!word) continue
    const start = Math.floor(Math.random() * (word.length - 2))
    fragments.add(word.slice(start, start + 3))
    if (fragments.size === 8) break
  }
  const flipPool = (
    await sql<{ id: number; status: 'contacted' | 'quoted' }>`
      select id, status from leads where status in ('contacted', 'quoted') order by random() limit 20000`.execute(db)
  ).rows
  // Sentinels must not be mistaken for any other parameter (user ids, limits, offsets).
  const taken = new Set([0, 20, 50, users.admin.id, users.sales.id])
  const clientId = clientIds.find((id) => !taken.has(id) && id > 200)
  const lead = flipPool.find((row) => row.status === 'contacted' && row.id !== clientId && !taken.has(row.id))
  if (clientId === undefined || lead === undefined) throw new Error('too few clients or leads to benchmark')
  return {
    clientIds,
    fragments: [...fragments],
    flipPool: flipPool.filter((row) => row.id !== lead.id),
    sentinels: { clientId, leadId: lead.id, q: SENTINEL_Q, username: BENCH_ADMIN, status: SENTINEL_STATUS },
  }
}

// --- What SQL the API sends ------------------------------------------------------------------------

class Rollback extends Error {}

const isTransactionControl = (text: string) => /^\s*(begin|commit|rollback)\b/i.test(text)

function monthRange(): { created_from: string; created_to: string } {
  const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10)
  return { created_from: day(30), created_to: day(1) }
}

/**
 * Runs the API's own services in-process on a Kysely that writes down every statement, with the
 * same arguments its routes pass them, and names each statement for the floor.
 */
async function captureStatements(
  url: string,
  users: Record<Role, BenchUser>,
  samples: Samples,
): Promise<Record<string, Statement>> {
  const captured: Statement[] = []
  const pool = new pg.Pool({ connectionString: url, max: 2, statement_timeout: 600_000 })
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      if (event.level === 'query' && !isTransactionControl(event.query.sql)) {
        captured.push({ text: event.query.sql, params: [...event.query.parameters] })
      }
    },
  })
  const take = () => captured.splice(0)
  const pick = (statements: Statement[], what: string, test: (text: string) => boolean): Statement => {
    const found = statements.filter((statement) => test(statement.text))
    if (found.length !== 1) throw new Error(`expected one ${what} statement, found ${found.length}`)
    return found[0] as Statement
  }
  const actor = (role: Role): AuthenticatedActor => ({
    userId: users[role].id,
    username: users[role].username,
    role,
    requestId: 'bench-capture',
  })
  const { sentinels } = samples
  const statements: Record<string, Statement> = {}
  try {
    for (const role of ROLES) {
      await getClient(db, sentinels.clientId)
      const [client] = take()
      await leadsOfClient(db, actor(role), sentinels.clientId)
      const [leads] = take()
      if (!client || !leads) throw new Error('GET /clients/{id} sent no statements')
      statements[STATEMENT_NAMES.clientGet] = client
      statements[STATEMENT_NAMES.clientLeads(role)] = leads

      await listLeads(db, actor(role), { status: ['new'], sort: '-created_at', limit: 50, offset: 0 })
      const list = take()
      statements[STATEMENT_NAMES.listItems(role)] = pick(list, 'list items', (text) => / limit /.test(text))
      statements[STATEMENT_NAMES.listCount(role)] = pick(list, 'list count', (text) => !/ limit /.test(text))

      for (const [variant, filter] of [
        [role, {}],
        [`${role}_month`, monthRange()],
      ] as const) {
        await leadStats(db, actor(role), filter)
        const stats = take()
        statements[STATEMENT_NAMES.statsGroups(variant)] = pick(stats, 'stats groups', (text) =>
          text.includes('grouping sets'),
        )
        statements[STATEMENT_NAMES.statsPerDay(variant)] = pick(stats, 'stats per day', (text) =>
          text.includes('generate_series'),
        )
        // Absent when no lead is assigned: then the floor never needs it either.
        const usersStatement = stats.find((statement) => statement.text.includes('from "users"'))
        if (usersStatement) statements[STATEMENT_NAMES.statsUsers(variant)] = usersStatement
      }
    }

    // Search is the same for every role.
    await searchClients(db, { q: sentinels.q, limit: 20, offset: 0 })
    const search = take()
    statements[STATEMENT_NAMES.searchSettings] = pick(search, 'search settings', (text) => text.includes('set_config'))
    statements[STATEMENT_NAMES.searchItems] = pick(search, 'search items', (text) => / limit /.test(text))
    statements[STATEMENT_NAMES.searchCount] = pick(
      search,
      'search count',
      (text) => !/ limit /.test(text) && !text.includes('set_config'),
    )

    // Writes, each rolled back.
    const rolledBack = (work: Parameters<ReturnType<Database['transaction']>['execute']>[0]) =>
      db
        .transaction()
        .execute(async (trx) => {
          await work(trx)
          throw new Rollback()
        })
        .catch((error) => {
          if (!(error instanceof Rollback)) throw error
        })
    await rolledBack((trx) =>
      createLead(trx, actor('admin'), { client_id: sentinels.clientId, channel: 'web', sales_notes: SALES_NOTE }),
    )
    const create = take()
    statements[STATEMENT_NAMES.createClientExists] = pick(create, 'client exists', (text) =>
      text.startsWith('select "id" from "clients"'),
    )
    statements[STATEMENT_NAMES.createInsert] = pick(create, 'lead insert', (text) =>
      text.startsWith('insert into "leads"'),
    )
    statements[STATEMENT_NAMES.auditInsert] = pick(create, 'audit insert', (text) =>
      text.startsWith('insert into "audit_logs"'),
    )
    statements[STATEMENT_NAMES.leadGet] = pick(create, 'lead read', (text) => text.includes('inner join "clients"'))

    await rolledBack((trx) => changeLeadStatus(trx, actor('admin'), sentinels.leadId, 'quoted'))
    const status = take()
    statements[STATEMENT_NAMES.leadLock] = pick(status, 'lead lock', (text) => text.endsWith('for update'))
    statements[STATEMENT_NAMES.leadStatusUpdate] = pick(status, 'status update', (text) =>
      text.startsWith('update "leads"'),
    )

    await login(db, { username: BENCH_ADMIN, password: users.admin.password }, '127.0.0.1', {
      maxFailuresPerUser: 5,
      maxFailuresPerAddress: 20,
      windowSeconds: 900,
    })
    statements[STATEMENT_NAMES.loginUser] = pick(take(), 'login user', (text) => text.includes('"password_hash"'))
  } finally {
    await db.destroy()
  }
  return statements
}

/** The statements the API sends for one scenario's input, for the floor's trace and for EXPLAIN. */
function apiStatements(spec: FloorSpec, scenario: string, role: Role, inputs: Inputs): Statement[] {
  const get = (name: string) => {
    const statement = spec.statements[name]
    if (!statement) throw new Error(`no statement ${name}`)
    return { text: statement.text, params: bind(spec, statement, inputs) }
  }
  const optional = (name: string) => (spec.statements[name] ? [get(name)] : [])
  switch (scenario) {
    case 'client':
      return [get(STATEMENT_NAMES.clientGet), get(STATEMENT_NAMES.clientLeads(role))]
    case 'list':
      return [get(STATEMENT_NAMES.listItems(role)), get(STATEMENT_NAMES.listCount(role))]
    case 'search':
      return [get(STATEMENT_NAMES.searchSettings), get(STATEMENT_NAMES.searchItems), get(STATEMENT_NAMES.searchCount)]
    case 'stats':
    case 'stats_month': {
      const variant = scenario === 'stats' ? role : `${role}_month`
      return [
        get(STATEMENT_NAMES.statsGroups(variant)),
        ...optional(STATEMENT_NAMES.statsUsers(variant)),
        get(STATEMENT_NAMES.statsPerDay(variant)),
      ]
    }
    default:
      throw new Error(`no read scenario ${scenario}`)
  }
}

// --- Processes -------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

interface Child {
  name: string
  url: string
  process: ChildProcess
  output(): string
  stop(): Promise<void>
}

async function startChild(
  name: string,
  script: string,
  env: Record<string, string>,
  readyPath: string,
): Promise<Child> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script)], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-16_384)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true
      resolve()
    }),
  )
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 120_000
  for (;;) {
    if (exited) throw new Error(`${name} exited before it was ready:\n${output}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} was not ready within 120 s:\n${output}`)
    }
    const ready = await fetch(`${url}${readyPath}`).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) break
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return {
    name,
    url,
    process: child,
    output: () => output,
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exit
      clearTimeout(timer)
    },
  }
}

// --- Measuring -------------------------------------------------------------------------------------

interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH'
  path: string
  body?: unknown
}

interface Figures {
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

async function measure(
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
async function drain(db: Database): Promise<void> {
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

type Kind = 'read' | 'write' | 'login'

interface Scenario {
  id: string
  label: string
  role: Role
  kind: Kind
  p99TargetMs?: number
  api: () => HttpRequest
  floor: () => HttpRequest
  /** Writes: the floor with every statement the API sends, beside the minimal transaction. */
  floorFull?: () => HttpRequest
  /** Reads and login: also measured with one connection, for the latency of a request alone. */
  single: boolean
}

interface ScenarioResult {
  id: string
  scenario: string
  role: Role
  kind: Kind
  api: Figures
  floor: Figures
  floor_full?: Figures
  api_single?: Figures
  floor_single?: Figures
  ratio: number
  ratio_full?: number
  targets: {
    p99_ms?: number
    p99_met_under_load?: boolean
    p99_met_single?: boolean
    ratio_min: number
    ratio_met: boolean
  }
}

function scenarios(samples: Samples, users: Record<Role, BenchUser>): Scenario[] {
  const randomOf = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)] as T
  const clientId = () => randomOf(samples.clientIds)
  const fragment = () => encodeURIComponent(randomOf(samples.fragments))
  const month = monthRange()
  const monthQuery = `created_from=${month.created_from}&created_to=${month.created_to}`
  let flipCursor = 0
  const flip = () => {
    const lead = samples.flipPool[flipCursor++ % samples.flipPool.length] as Samples['flipPool'][number]
    lead.status = lead.status === 'contacted' ? 'quoted' : 'contacted'
    return lead
  }
  let loginCursor = 0
  const nextLogin = () => {
    const user = users[ROLES[loginCursor++ % ROLES.length] as Role]
    return { username: user.username, password: user.password }
  }
  const list: Scenario[] = []
  for (const role of ROLES) {
    const read = (
      id: string,
      label: string,
      api: () => string,
      floor: () => string,
      p99TargetMs: number | undefined,
    ): Scenario => ({
      id,
      label,
      role,
      kind: 'read',
      p99TargetMs,
      api: () => ({ method: 'GET', path: api() }),
      floor: () => ({ method: 'GET', path: floor() }),
      single: true,
    })
    list.push(
      read(
        'client',
        'GET /clients/{id}',
        () => `/clients/${clientId()}`,
        () => `/${role}/clients/${clientId()}`,
        undefined,
      ),
      read(
        'list',
        'GET /leads?status=new&sort=-created_at&limit=50',
        () => '/leads?status=new&sort=-created_at&limit=50',
        () => `/${role}/leads`,
        P99_TARGET_MS.list,
      ),
      read(
        'search',
        'GET /clients/search?q=<3 letters>',
        () => `/clients/search?q=${fragment()}`,
        () => `/${role}/clients/search?q=${fragment()}`,
        P99_TARGET_MS.search,
      ),
      read(
        'stats',
        'GET /leads/stats',
        () => '/leads/stats',
        () => `/${role}/leads/stats`,
        P99_TARGET_MS.stats,
      ),
      read(
        'stats_month',
        'GET /leads/stats (one month)',
        () => `/leads/stats?${monthQuery}`,
        () => `/${role}/leads/stats?month=1`,
        P99_TARGET_MS.stats_month,
      ),
    )
  }
  const newLead = () => ({ client_id: clientId(), channel: 'web', sales_notes: SALES_NOTE })
  list.push(
    {
      id: 'create',
      label: 'POST /leads',
      role: 'admin',
      kind: 'write',
      api: () => ({ method: 'POST', path: '/leads', body: newLead() }),
      floor: () => ({ method: 'POST', path: '/admin/leads', body: newLead() }),
      floorFull: () => ({ method: 'POST', path: '/admin/leads?full=1', body: newLead() }),
      single: false,
    },
    {
      id: 'status',
      label: 'PATCH /leads/{id}/status',
      role: 'admin',
      kind: 'write',
      api: () => {
        const lead = flip()
        return { method: 'PATCH', path: `/leads/${lead.id}/status`, body: { status: lead.status } }
      },
      floor: () => {
        const lead = flip()
        return { method: 'PATCH', path: `/admin/leads/${lead.id}/status`, body: { status: lead.status } }
      },
      floorFull: () => {
        const lead = flip()
        return { method: 'PATCH', path: `/admin/leads/${lead.id}/status?full=1`, body: { status: lead.status } }
      },
      single: false,
    },
    {
      id: 'login',
      label: 'POST /auth/login (admin and sales in turn)',
      role: 'admin',
      kind: 'login',
      api: () => ({ method: 'POST', path: '/auth/login', body: nextLogin() }),
      floor: () => ({ method: 'POST', path: '/login', body: nextLogin() }),
      single: true,
    },
  )
  return list
}

// --- Checks: the floor's SQL, and the plans --------------------------------------------------------

interface SqlCheck {
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

async function traceFloor(floor: Child, request: HttpRequest): Promise<Statement[]> {
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
async function checkFloorSql(floor: Child, spec: FloorSpec): Promise<SqlCheck[]> {
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
    const inputs = { clientId: sentinels.clientId, q: sentinels.q }
    const reads: Array<[string, string]> = [
      ['client', `/${role}/clients/${sentinels.clientId}`],
      ['list', `/${role}/leads`],
      ['search', `/${role}/clients/search?q=${sentinels.q}`],
      ['stats', `/${role}/leads/stats`],
      ['stats_month', `/${role}/leads/stats${monthly}`],
    ]
    for (const [scenario, path] of reads) {
      compare(
        scenario,
        role,
        apiStatements(spec, scenario, role, inputs),
        await traceFloor(floor, { method: 'GET', path }),
        'same',
      )
    }
  }
  const s = spec.statements
  const named = (...names: string[]) => names.map((name) => s[name] as Statement)
  const createStatements = named(
    STATEMENT_NAMES.createClientExists,
    STATEMENT_NAMES.createInsert,
    STATEMENT_NAMES.auditInsert,
    STATEMENT_NAMES.leadGet,
  )
  const body = { client_id: sentinels.clientId, channel: 'web', sales_notes: SALES_NOTE }
  compare(
    'create',
    'admin',
    createStatements,
    await traceFloor(floor, { method: 'POST', path: '/admin/leads', body }),
    'subset',
  )
  compare(
    'create (full)',
    'admin',
    createStatements,
    await traceFloor(floor, { method: 'POST', path: '/admin/leads?full=1', body }),
    'same',
  )
  const statusStatements = named(
    STATEMENT_NAMES.leadLock,
    STATEMENT_NAMES.leadStatusUpdate,
    STATEMENT_NAMES.auditInsert,
    STATEMENT_NAMES.leadGet,
  )
  // contacted -> quoted -> contacted: the sentinel lead ends as it started.
  compare(
    'status',
    'admin',
    statusStatements,
    await traceFloor(floor, {
      method: 'PATCH',
      path: `/admin/leads/${sentinels.leadId}/status`,
      body: { status: 'quoted' },
    }),
    'subset',
  )
  compare(
    'status (full)',
    'admin',
    statusStatements,
    await traceFloor(floor, {
      method: 'PATCH',
      path: `/admin/leads/${sentinels.leadId}/status?full=1`,
      body: { status: 'contacted' },
    }),
    'same',
  )
  return checks
}

interface PlanRecord {
  scenario: string
  role: Role | 'any'
  q?: string
  statement: string
  execution_ms: number | null
  seq_scan_on: string[]
  plan: string
}

async function explainReads(url: string, spec: FloorSpec, samples: Samples): Promise<PlanRecord[]> {
  const client = new pg.Client({ connectionString: url, statement_timeout: 600_000 })
  await client.connect()
  const records: PlanRecord[] = []
  const explain = async (scenario: string, role: Role | 'any', statements: Statement[], q?: string) => {
    await client.query('begin')
    try {
      for (const statement of statements) {
        if (statement.text.includes('set_config')) {
          await client.query(statement.text, statement.params)
          continue
        }
        const result = await client.query<{ 'QUERY PLAN': string }>(
          `explain (analyze, buffers) ${statement.text}`,
          statement.params,
        )
        const plan = result.rows.map((row) => row['QUERY PLAN']).join('\n')
        const time = plan.match(/Execution Time: ([\d.]+) ms/)
        const seqScans = [...plan.matchAll(/Seq Scan on (clients|leads)\b/g)].map((match) => match[1] as string)
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
      await explain('stats', role, apiStatements(spec, 'stats', role, {}))
      await explain('stats_month', role, apiStatements(spec, 'stats_month', role, {}))
    }
    for (const q of samples.fragments) await explain('search', 'any', apiStatements(spec, 'search', 'admin', { q }), q)
  } finally {
    await client.end()
  }
  return records
}

// --- Output ----------------------------------------------------------------------------------------

const fixed = (value: number | undefined, digits = 0) =>
  value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits)

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, index) =>
    Math.max(header.length, ...rows.map((row) => (row[index] ?? '').length)),
  )
  const line = (cells: string[]) =>
    `| ${cells.map((cell, index) => (index < 2 ? cell.padEnd(widths[index] ?? 0) : cell.padStart(widths[index] ?? 0))).join(' | ')} |`
  return [line(headers), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

function printReport(report: Report): void {
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
      ? 'Plans: no Seq Scan on clients or leads.'
      : `Plans: Seq Scan on clients or leads in ${[
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

interface Report {
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

// --- Main ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now()
  let options: Options
  try {
    options = parseOptions()
  } catch (error) {
    console.error((error as Error).message)
    console.error(USAGE)
    process.exitCode = 2
    return
  }
  const url = process.env.DATABASE_URL
  if (!url || !/^postgres(ql)?:\/\//.test(url)) {
    console.error('DATABASE_URL must name a PostgreSQL server (postgres://...): the benchmark needs a real one.')
    console.error(USAGE)
    process.exitCode = 2
    return
  }

  const handle = openDatabase({ url, poolSize: 4, connectTimeoutMs: 10_000, statementTimeoutMs: 2 * 3600_000 })
  const db = handle.db
  const children: Child[] = []
  const workDir = await mkdtemp(join(os.tmpdir(), 'crm-bench-'))
  const stopAll = async () => {
    await Promise.all(children.map((child) => child.stop()))
  }
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    log('migrating')
    await migrate(url)
    await seedMissing(db, options)
    await sql`analyze`.execute(db)
    const data = await countRows(db)
    const users = await prepareUsers(db)
    const samples = await sample(db, users)
    log(`sales user ${users.sales.username}; search fragments ${samples.fragments.join(', ')}`)

    log('capturing the SQL the API sends')
    const statements = await captureStatements(url, users, samples)
    const spec: FloorSpec = {
      sentinels: samples.sentinels,
      users: {
        admin: { id: users.admin.id, username: users.admin.username },
        sales: { id: users.sales.id, username: users.sales.username },
      },
      statements,
    }
    const specFile = join(workDir, 'floor-spec.json')
    await writeFile(specFile, JSON.stringify(spec))

    log('explaining the reads')
    const plans = await explainReads(url, spec, samples)

    const loadAtStart = Math.round((os.loadavg()[0] ?? 0) * 100) / 100
    if (loadAtStart > 0.5 * os.cpus().length) log(`the load average is ${loadAtStart}: figures will be low and noisy`)
    const poolSize = String(options.connections)
    log(`starting the API and the floor, each with a pool of ${poolSize}`)
    const api = await startChild(
      'API',
      'src/server.ts',
      {
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        DATABASE_URL: url,
        DB_POOL_SIZE: poolSize,
        JWT_SECRET: randomBytes(48).toString('base64url'),
        ADMIN_PASSWORD: randomBytes(18).toString('base64url'),
        // Every attempt counts against the throttle while its password is checked, so C concurrent
        // right logins from one address would be refused past the default 20 (and 5 a user).
        LOGIN_MAX_FAILURES_PER_USER: '100000',
        LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
      },
      '/ready',
    )
    children.push(api)
    const floor = await startChild(
      'floor',
      'scripts/bench-floor.ts',
      { NODE_ENV: 'production', DATABASE_URL: url, DB_POOL_SIZE: poolSize, BENCH_FLOOR_SPEC: specFile },
      '/ready',
    )
    children.push(floor)

    const sqlChecks = await checkFloorSql(floor, spec)
    for (const check of sqlChecks.filter((each) => !each.same)) {
      log(`WARNING: the floor's SQL differs from the API's for ${check.scenario}/${check.role}:\n${check.detail}`)
    }

    const tokens = {} as Record<Role, string>
    for (const role of ROLES) {
      const response = await fetch(`${api.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: users[role].username, password: users[role].password }),
      })
      const body = (await response.json()) as { access_token?: string }
      if (!response.ok || !body.access_token) throw new Error(`login as ${users[role].username}: ${response.status}`)
      tokens[role] = body.access_token
    }

    const results: ScenarioResult[] = []
    const warmup = Math.max(1, Math.round(options.duration / 5))
    const singleDuration = Math.max(4, Math.ceil(options.duration / 2))
    for (const scenario of scenarios(samples, users)) {
      const apiHeaders: Record<string, string> =
        scenario.kind === 'login' ? {} : { authorization: `Bearer ${tokens[scenario.role]}` }
      const run = async (
        base: string,
        make: () => HttpRequest,
        headers: Record<string, string>,
        connections: number,
        duration: number,
      ) => {
        await measure(base, make, headers, connections, connections === 1 ? 1 : warmup)
        await drain(db)
        const figures = await measure(base, make, headers, connections, duration)
        await drain(db)
        return figures
      }
      log(`${scenario.label} as ${scenario.role}`)
      // One connection first: how long a request takes alone tells how long a loaded run must last
      // for C of them, queued on the CPUs, to be answered more than a couple of times (at most 3 × --duration).
      const apiSingle = scenario.single ? await run(api.url, scenario.api, apiHeaders, 1, singleDuration) : undefined
      const floorSingle = scenario.single ? await run(floor.url, scenario.floor, {}, 1, singleDuration) : undefined
      const aloneMs = Math.max(apiSingle?.latency_ms.mean || 0, floorSingle?.latency_ms.mean || 0)
      const loadedDuration = Math.min(
        Math.max(options.duration, options.duration * 3),
        Math.max(options.duration, Math.ceil((2.5 * aloneMs * options.connections) / 1000 / os.cpus().length)),
      )
      const apiFigures = await run(api.url, scenario.api, apiHeaders, options.connections, loadedDuration)
      const floorFigures = await run(floor.url, scenario.floor, {}, options.connections, loadedDuration)
      const floorFull = scenario.floorFull
        ? await run(floor.url, scenario.floorFull, {}, options.connections, loadedDuration)
        : undefined
      const ratio = apiFigures.rps / floorFigures.rps
      const ratioMin = scenario.kind === 'read' ? READ_RATIO_TARGET : WRITE_RATIO_TARGET
      const result: ScenarioResult = {
        id: scenario.id,
        scenario: scenario.label,
        role: scenario.role,
        kind: scenario.kind,
        api: apiFigures,
        floor: floorFigures,
        ...(floorFull && { floor_full: floorFull, ratio_full: apiFigures.rps / floorFull.rps }),
        ...(apiSingle && { api_single: apiSingle }),
        ...(floorSingle && { floor_single: floorSingle }),
        ratio,
        targets: {
          ...(scenario.p99TargetMs !== undefined && {
            p99_ms: scenario.p99TargetMs,
            p99_met_under_load: apiFigures.latency_ms.p99 < scenario.p99TargetMs,
            ...(apiSingle && { p99_met_single: apiSingle.latency_ms.p99 < scenario.p99TargetMs }),
          }),
          ratio_min: ratioMin,
          ratio_met: ratio >= ratioMin,
        },
      }
      results.push(result)
      log(
        `  API ${fixed(apiFigures.rps)} req/s p99 ${apiFigures.latency_ms.p99} ms (non-2xx ${apiFigures.non2xx}, errors ${apiFigures.errors}); ` +
          `floor ${fixed(floorFigures.rps)} req/s p99 ${floorFigures.latency_ms.p99} ms; ratio ${fixed(ratio, 2)}` +
          (apiSingle
            ? `; alone: API p99 ${apiSingle.latency_ms.p99} ms, floor p99 ${floorSingle?.latency_ms.p99} ms`
            : ''),
      )
      for (const figures of [apiFigures, floorFigures, floorFull, apiSingle, floorSingle]) {
        if (figures && figures.non2xx_samples.length > 0) log(`  non-2xx: ${figures.non2xx_samples.join(' | ')}`)
      }
    }
    if (api.output().trim()) log(`API output (last lines):\n${api.output().slice(-2000)}`)

    const version = await sql<{ version: string }>`select version()`.execute(db)
    const settings = await sql<{ name: string; setting: string; unit: string | null }>`
      select name, setting, unit from pg_settings
      where name in ('shared_buffers', 'work_mem', 'effective_cache_size', 'max_connections', 'random_page_cost', 'jit')`.execute(
      db,
    )
    const report: Report = {
      options,
      machine: {
        cpus: os.cpus().length,
        cpu_model: os.cpus()[0]?.model ?? 'unknown',
        loadavg_1m_at_start: loadAtStart,
        memory_gb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        postgres: version.rows[0]?.version ?? 'unknown',
        postgres_settings: Object.fromEntries(
          settings.rows.map((setting) => [setting.name, `${setting.setting}${setting.unit ? ` ${setting.unit}` : ''}`]),
        ),
      },
      data,
      samples: {
        fragments: samples.fragments,
        client_ids: samples.clientIds.length,
        flip_pool: samples.flipPool.length,
        month: monthRange(),
      },
      users: { admin: users.admin.username, sales: users.sales.username },
      results,
      sql_checks: sqlChecks,
      plans,
      sql: statements,
      seconds: Math.round((performance.now() - started) / 1000),
    }
    if (options.json) console.log(JSON.stringify(report, null, 2))
    else printReport(report)
  } finally {
    await stopAll()
    await handle.close()
    await rm(workDir, { recursive: true, force: true })
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

await main()
