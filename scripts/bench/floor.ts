/**
 * The floor of the benchmark (`scripts/bench/main.ts`): a bare Fastify server that sends PostgreSQL the
 * statements the API sends for each benchmarked route, through `pg` with a pool of the same size,
 * and nothing else: no authentication, validation, response schemas, audit helpers or error mapping.
 * What the API costs above this is its own overhead.
 *
 * The statements come from a spec file (BENCH_FLOOR_SPEC) that `main.ts` writes after capturing,
 * in-process, what the API's services send for one input of each route; a request here binds its
 * own input (client id, search text, lead id, status, username) where that capture had a sentinel.
 * A request with the header `x-bench-trace: 1` answers the statements it ran, so `main.ts` can check
 * them against the API's.
 *
 * Routes, each under /admin or /sales (whose user the statements are scoped to):
 *   GET  /:role/clients/:id                 client + the leads of it the role may see
 *   GET  /:role/leads                       ?status=new&sort=-created_at&limit=50: items and count
 *   GET  /:role/clients/search?q=           items and count (the search setting is sent on each new connection)
 *   GET  /:role/leads/stats[?month=1]        grouped counts, assignee names, per day
 *   POST /:role/leads[?full=1]              BEGIN; insert lead; insert audit row; COMMIT (full: every API statement)
 *   PATCH /:role/leads/:id/status[?full=1]  BEGIN; lock; update; insert audit row; COMMIT (full: + re-read)
 *   POST /login                             the user's row and an argon2 verification
 * Environment: DATABASE_URL, DB_POOL_SIZE, HOST, PORT, BENCH_FLOOR_SPEC.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import argon2 from 'argon2'
import Fastify, { type FastifyRequest } from 'fastify'
import pg from 'pg'
import { SEARCH_SESSION_SQL } from '../../src/db/search.js'

export interface Statement {
  text: string
  params: unknown[]
}

export type Role = 'admin' | 'sales'

/** What `capture.ts` captured, and the sentinel inputs it captured them with. */
export interface FloorSpec {
  sentinels: { clientId: number; leadId: number; q: string; username: string; status: string }
  users: Record<Role, { id: number; username: string }>
  statements: Record<string, Statement>
}

/** The names under which the spec keeps each statement. */
export const STATEMENT_NAMES = {
  clientGet: 'client.get',
  clientLeads: (role: Role) => `client.leads.${role}`,
  listItems: (role: Role) => `leads.list.items.${role}`,
  listCount: (role: Role) => `leads.list.count.${role}`,
  searchItems: 'search.items',
  searchCount: 'search.count',
  statsGroups: (variant: string) => `stats.groups.${variant}`,
  statsUsers: (variant: string) => `stats.users.${variant}`,
  statsPerDay: (variant: string) => `stats.per_day.${variant}`,
  createClientExists: 'lead.create.client_exists',
  createInsert: 'lead.create.insert',
  auditInsert: 'audit.insert',
  leadGet: 'lead.get.admin',
  leadLock: 'lead.lock.admin',
  leadStatusUpdate: 'lead.status.update',
  loginUser: 'login.user',
} as const

export interface Inputs {
  clientId?: number
  leadId?: number
  q?: string
  username?: string
  status?: string
}

/** The captured parameters with this request's inputs where the capture had its sentinels. */
export function bind(spec: FloorSpec, statement: Statement, inputs: Inputs): unknown[] {
  const { sentinels } = spec
  return statement.params.map((param) => {
    if (typeof param === 'number') {
      if (param === sentinels.clientId && inputs.clientId !== undefined) return inputs.clientId
      if (param === sentinels.leadId && inputs.leadId !== undefined) return inputs.leadId
      return param
    }
    if (typeof param === 'string') {
      if (param === sentinels.username && inputs.username !== undefined) return inputs.username
      if (param === sentinels.status && inputs.status !== undefined) return inputs.status
      if (inputs.q !== undefined && param.includes(sentinels.q)) return param.replaceAll(sentinels.q, inputs.q)
    }
    return param
  })
}

/** `... where "id" in ($1, $2)` rewritten for another number of ids, as Kysely writes it. */
export function inListText(text: string, count: number): string {
  const start = text.lastIndexOf(' in (')
  if (start < 0) throw new Error(`no "in (...)" list in ${text}`)
  const end = text.indexOf(')', start)
  const list = Array.from({ length: count }, (_, index) => `$${index + 1}`).join(', ')
  return `${text.slice(0, start)} in (${list})${text.slice(end + 1)}`
}

pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10))

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient

async function main(): Promise<void> {
  const specFile = process.env.BENCH_FLOOR_SPEC
  const url = process.env.DATABASE_URL
  if (!specFile || !url) throw new Error('BENCH_FLOOR_SPEC and DATABASE_URL are required')
  const spec = JSON.parse(await readFile(specFile, 'utf8')) as FloorSpec
  const statement = (name: string): Statement => {
    const found = spec.statements[name]
    if (!found) throw new Error(`the spec has no statement ${name}`)
    return found
  }
  // The API's pool settings (src/db/database.ts) with its default timeouts.
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(process.env.DB_POOL_SIZE ?? 10),
    connectionTimeoutMillis: 2000,
    statement_timeout: 15_000,
    query_timeout: 17_000,
    idleTimeoutMillis: 30_000,
    application_name: 'mini-crm-bench-floor',
  })
  pool.on('error', () => {})
  pool.on('connect', (client) => client.query(SEARCH_SESSION_SQL).catch(() => {}))

  /** Runs a statement, writing it down when the request asked for a trace. */
  const runner = (request: FastifyRequest) => {
    const trace: Statement[] | undefined = request.headers['x-bench-trace'] ? [] : undefined
    const run = async <R extends pg.QueryResultRow>(on: Queryable, text: string, params: unknown[]) => {
      trace?.push({ text, params })
      return (await on.query<R>(text, params)).rows
    }
    const answer = (body: unknown) => (trace ? { trace } : body)
    return { run, answer }
  }

  const transaction = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect()
    try {
      await client.query('begin')
      const result = await work(client)
      await client.query('commit')
      return result
    } catch (error) {
      await client.query('rollback').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  const roleOf = (request: FastifyRequest): Role => {
    const role = (request.params as { role: string }).role
    if (role !== 'admin' && role !== 'sales') throw Object.assign(new Error('unknown role'), { statusCode: 404 })
    return role
  }

  const app = Fastify({ logger: false })

  app.get('/ready', async () => {
    await pool.query('select 1')
    return { status: 'ok' }
  })

  app.get('/:role/clients/:id', async (request, reply) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const clientId = Number((request.params as { id: string }).id)
    const clientStatement = statement(STATEMENT_NAMES.clientGet)
    const [client] = await run(pool, clientStatement.text, bind(spec, clientStatement, { clientId }))
    if (!client) return reply.code(404).send({ error: 'not found' })
    const leadsStatement = statement(STATEMENT_NAMES.clientLeads(role))
    const leads = await run(pool, leadsStatement.text, bind(spec, leadsStatement, { clientId }))
    return answer({ ...client, leads })
  })

  app.get('/:role/leads', async (request) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const items = statement(STATEMENT_NAMES.listItems(role))
    const count = statement(STATEMENT_NAMES.listCount(role))
    // Two pool connections at once, as the API's Promise.all does.
    const [rows, [total]] = await Promise.all([
      run(pool, items.text, items.params),
      run<{ total: number }>(pool, count.text, count.params),
    ])
    return answer({ items: rows, total: total?.total })
  })

  app.get('/:role/clients/search', async (request) => {
    roleOf(request)
    const { run, answer } = runner(request)
    const q = (request.query as { q: string }).q
    const items = statement(STATEMENT_NAMES.searchItems)
    const count = statement(STATEMENT_NAMES.searchCount)
    const [rows, [total]] = await Promise.all([
      run(pool, items.text, bind(spec, items, { q })),
      run<{ total: number }>(pool, count.text, bind(spec, count, { q })),
    ])
    return answer({ items: rows, total: total?.total })
  })

  app.get('/:role/leads/stats', async (request) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const variant = (request.query as { month?: string }).month ? `${role}_month` : role
    const groupsStatement = statement(STATEMENT_NAMES.statsGroups(variant))
    const groups = await run<{ grouping: number; assigned_to: number | null }>(
      pool,
      groupsStatement.text,
      groupsStatement.params,
    )
    const assignees = groups
      .filter((row) => Number(row.grouping) === 6 && row.assigned_to !== null)
      .map((row) => row.assigned_to as number)
    const users =
      assignees.length === 0
        ? []
        : await run(pool, inListText(statement(STATEMENT_NAMES.statsUsers(variant)).text, assignees.length), assignees)
    const perDayStatement = statement(STATEMENT_NAMES.statsPerDay(variant))
    const perDay = await run(pool, perDayStatement.text, perDayStatement.params)
    return answer({ groups, users, per_day: perDay })
  })

  app.post('/:role/leads', async (request, reply) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const full = Boolean((request.query as { full?: string }).full)
    const body = request.body as { client_id: number }
    const user = spec.users[role]
    const lead = await transaction(async (client) => {
      if (full) {
        const exists = statement(STATEMENT_NAMES.createClientExists)
        await run(client, exists.text, bind(spec, exists, { clientId: body.client_id }))
      }
      const insert = statement(STATEMENT_NAMES.createInsert)
      const [row] = await run<{ id: number }>(client, insert.text, bind(spec, insert, { clientId: body.client_id }))
      if (!row) throw new Error('no row inserted')
      await run(client, statement(STATEMENT_NAMES.auditInsert).text, [
        'leads',
        row.id,
        'create',
        null,
        JSON.stringify(row),
        user.id,
        user.username,
        request.id,
      ])
      if (!full) return row
      const [read] = await run(client, statement(STATEMENT_NAMES.leadGet).text, [row.id])
      return read
    })
    return reply.code(201).send(answer(lead))
  })

  app.patch('/:role/leads/:id/status', async (request, reply) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const full = Boolean((request.query as { full?: string }).full)
    const leadId = Number((request.params as { id: string }).id)
    const status = (request.body as { status: string }).status
    const user = spec.users[role]
    const lead = await transaction(async (client) => {
      const lock = statement(STATEMENT_NAMES.leadLock)
      const [current] = await run<{ status: string }>(client, lock.text, bind(spec, lock, { leadId }))
      if (!current) return undefined
      const update = statement(STATEMENT_NAMES.leadStatusUpdate)
      await run(client, update.text, bind(spec, update, { leadId, status }))
      await run(client, statement(STATEMENT_NAMES.auditInsert).text, [
        'leads',
        leadId,
        'update',
        JSON.stringify({ status: current.status }),
        JSON.stringify({ status }),
        user.id,
        user.username,
        request.id,
      ])
      if (!full) return { ...current, status }
      const [read] = await run(client, statement(STATEMENT_NAMES.leadGet).text, [leadId])
      return read
    })
    if (!lead) return reply.code(404).send({ error: 'not found' })
    return answer(lead)
  })

  app.post('/login', async (request, reply) => {
    const { run, answer } = runner(request)
    const body = request.body as { username: string; password: string }
    const select = statement(STATEMENT_NAMES.loginUser)
    const [user] = await run<{ password_hash: string }>(
      pool,
      select.text,
      bind(spec, select, { username: body.username }),
    )
    const ok = user ? await argon2.verify(user.password_hash, body.password) : false
    if (!ok) return reply.code(401).send({ error: 'invalid credentials' })
    return answer({ ok: true })
  })

  const close = async () => {
    await app.close()
    await pool.end()
    process.exit(0)
  }
  process.on('SIGTERM', close)
  process.on('SIGINT', close)
  const address = await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) })
  console.log(`floor listening at ${address}`)
}

const entry = process.argv[1]
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) await main()
