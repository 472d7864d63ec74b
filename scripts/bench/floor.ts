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
 *   GET  /:role/clients/:id                 client, then its 20 newest leads the role may see and their count
 *   GET  /:role/leads[?deep=1]              ?status=new&sort=-created_at&limit=50: items and count
 *                                           (deep: the page after the 10,000th, by cursor)
 *   GET  /:role/clients/search?q=           items and count (the search setting is sent on each new connection)
 *   GET  /:role/search?q=                   BEGIN; the planner setting; ranked hits; their count; COMMIT
 *   GET  /:role/leads/stats[?month=1]        grouped counters and closed per day, then assignee names; beside
 *                                           them the pipeline settings, then BEGIN; a setting; the response
 *                                           times; COMMIT
 *   GET  /:role/me/agenda                   the caller's time zone, then four lists' items and counts
 *   POST /:role/leads                       BEGIN; insert lead returning it with its client; insert audit row; COMMIT
 *   PATCH /:role/leads/:id/status           BEGIN; lock; update + audit row + client in one statement; COMMIT
 *   POST /login                             the user's row and an argon2 verification
 * Environment: DATABASE_URL, DB_POOL_SIZE, HOST, PORT, BENCH_FLOOR_SPEC.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import argon2 from 'argon2'
import Fastify, { type FastifyRequest } from 'fastify'
import pg from 'pg'
import { fullTextTerms, queryWords } from '../../src/db/search.js'

export interface Statement {
  text: string
  params: unknown[]
}

export type Role = 'admin' | 'sales'

/** What `capture.ts` captured, and the sentinel inputs it captured them with. */
export interface FloorSpec {
  /** q: a search of four letters or more; qShort: of fewer (no similar-word branch). */
  sentinels: {
    clientId: number
    leadId: number
    q: string
    qShort: string
    /** The text of GET /search, whose statements carry the term arrays derived from it (fullTextTerms). */
    qFullText: string
    username: string
    status: string
  }
  users: Record<Role, { id: number; username: string }>
  statements: Record<string, Statement>
}

/** The names under which the spec keeps each statement. */
export const STATEMENT_NAMES = {
  clientGet: 'client.get',
  clientLeads: (role: Role) => `client.leads.${role}`,
  clientLeadsCount: (role: Role) => `client.leads_total.${role}`,
  listItems: (role: Role) => `leads.list.items.${role}`,
  listDeepItems: (role: Role) => `leads.list.deep_items.${role}`,
  listCount: (role: Role) => `leads.list.count.${role}`,
  searchItems: (length: SearchLength) => `search.items.${length}`,
  searchCount: (length: SearchLength) => `search.count.${length}`,
  fullTextSetting: 'fulltext.setting',
  fullTextItems: (role: Role) => `fulltext.items.${role}`,
  fullTextCount: (role: Role) => `fulltext.count.${role}`,
  statsGroups: (variant: string) => `stats.groups.${variant}`,
  statsUsers: (variant: string) => `stats.users.${variant}`,
  statsClosed: (variant: string) => `stats.closed.${variant}`,
  statsSettings: (variant: string) => `stats.settings.${variant}`,
  statsResponses: (variant: string) => `stats.responses.${variant}`,
  /** Deal values per currency: open by status with the forecast, and won per month (sent in parallel). */
  statsValueOpen: (variant: string) => `stats.value_open.${variant}`,
  statsValueWon: (variant: string) => `stats.value_won.${variant}`,
  /** The setting the response times' transaction makes before their statement. */
  statsResponsesSetting: (variant: string) => `stats.responses_setting.${variant}`,
  /** GET /me/agenda: the caller's time zone, then its eight lists' items and counts (sent in parallel). */
  agendaTimeZone: (role: Role) => `agenda.time_zone.${role}`,
  /** Without an index: the prefix of them all. */
  agendaList: (role: Role, index?: number) => `agenda.list.${role}.${index ?? ''}`,
  /** The statements of a write, in the order the API sends them. */
  createStep: (index: number) => `lead.create.${String(index).padStart(2, '0')}`,
  statusStep: (index: number) => `lead.status.${String(index).padStart(2, '0')}`,
  loginUser: 'login.user',
} as const

/** Searches of fewer than four letters send other SQL (no similar-word branch). */
export type SearchLength = 'short' | 'long'
export const searchLength = (q: string): SearchLength => (q.trim().length < 4 ? 'short' : 'long')

export interface Inputs {
  clientId?: number
  leadId?: number
  q?: string
  username?: string
  status?: string
}

/** Every statement of a write (`lead.create` or `lead.status`), in the order the API sent them. */
export function writeSteps(spec: FloorSpec, write: 'lead.create' | 'lead.status'): Statement[] {
  return Object.keys(spec.statements)
    .filter((name) => name.startsWith(`${write}.`))
    .sort()
    .map((name) => spec.statements[name] as Statement)
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
      if (inputs.q !== undefined && param.includes(sentinels.qShort)) {
        return param.replaceAll(sentinels.qShort, inputs.q)
      }
    }
    return param
  })
}

/**
 * A GET /search statement's parameters for the text `q`: each term array that the sentinel text gave
 * (search_query's arguments, see fullTextTerms) replaced by the one `q` gives.
 */
export function bindFullText(spec: FloorSpec, statement: Statement, q: string): unknown[] {
  const termsOf = (text: string) => {
    const { matches, highlight } = fullTextTerms(queryWords(text))
    return [matches.stems, matches.plain, highlight.stems, highlight.plain].map((terms) => JSON.stringify(terms))
  }
  const captured = termsOf(spec.sentinels.qFullText)
  const wanted = termsOf(q)
  return statement.params.map((param) => {
    const at = captured.indexOf(JSON.stringify(param))
    return at === -1 ? param : JSON.parse(wanted[at] as string)
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
    const countStatement = statement(STATEMENT_NAMES.clientLeadsCount(role))
    const [leads, [count]] = await Promise.all([
      run(pool, leadsStatement.text, bind(spec, leadsStatement, { clientId })),
      run<{ count: number }>(pool, countStatement.text, bind(spec, countStatement, { clientId })),
    ])
    return answer({ ...client, leads, leads_total: count?.count })
  })

  app.get('/:role/leads', async (request) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const deep = Boolean((request.query as { deep?: string }).deep)
    const items = statement(deep ? STATEMENT_NAMES.listDeepItems(role) : STATEMENT_NAMES.listItems(role))
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
    const items = statement(STATEMENT_NAMES.searchItems(searchLength(q)))
    const count = statement(STATEMENT_NAMES.searchCount(searchLength(q)))
    const [rows, [total]] = await Promise.all([
      run(pool, items.text, bind(spec, items, { q })),
      run<{ total: number }>(pool, count.text, bind(spec, count, { q })),
    ])
    return answer({ items: rows, total: total?.total })
  })

  app.get('/:role/search', async (request) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const q = (request.query as { q: string }).q
    const setting = statement(STATEMENT_NAMES.fullTextSetting)
    const items = statement(STATEMENT_NAMES.fullTextItems(role))
    const count = statement(STATEMENT_NAMES.fullTextCount(role))
    // One transaction on one connection, as the API's search runs.
    const [rows, total] = await transaction(async (client) => {
      await run(client, setting.text, setting.params)
      const found = await run(client, items.text, bindFullText(spec, items, q))
      const [counted] = await run<{ total: number }>(client, count.text, bindFullText(spec, count, q))
      return [found, counted?.total] as const
    })
    return answer({ items: rows, total })
  })

  app.get('/:role/leads/stats', async (request) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const variant = (request.query as { month?: string }).month ? `${role}_month` : role
    const groupsStatement = statement(STATEMENT_NAMES.statsGroups(variant))
    const closedStatement = statement(STATEMENT_NAMES.statsClosed(variant))
    const settingsStatement = statement(STATEMENT_NAMES.statsSettings(variant))
    const responsesStatement = statement(STATEMENT_NAMES.statsResponses(variant))
    const responsesSetting = statement(STATEMENT_NAMES.statsResponsesSetting(variant))
    const counts = async () => {
      const [groups, closed] = await Promise.all([
        run<{ grouping: number; assigned_to: number | null; total: number }>(
          pool,
          groupsStatement.text,
          groupsStatement.params,
        ),
        run(pool, closedStatement.text, closedStatement.params),
      ])
      // grouping 0b1101: the rows by assignee.
      const assignees = groups
        .filter((row) => Number(row.grouping) === 0b1101 && row.assigned_to !== null && Number(row.total) !== 0)
        .map((row) => row.assigned_to as number)
      const users =
        assignees.length === 0
          ? []
          : await run(
              pool,
              inListText(statement(STATEMENT_NAMES.statsUsers(variant)).text, assignees.length),
              assignees,
            )
      return { groups, closed, users }
    }
    // The response target is the captured one: the floor reads the settings as the API does, not to use them.
    const responses = async () => {
      await run(pool, settingsStatement.text, settingsStatement.params)
      return transaction(async (client) => {
        await run(client, responsesSetting.text, responsesSetting.params)
        return run(client, responsesStatement.text, responsesStatement.params)
      })
    }
    const valueOpen = statement(STATEMENT_NAMES.statsValueOpen(variant))
    const valueWon = statement(STATEMENT_NAMES.statsValueWon(variant))
    const values = () =>
      Promise.all([run(pool, valueOpen.text, valueOpen.params), run(pool, valueWon.text, valueWon.params)])
    const [{ groups, closed, users }, times, value] = await Promise.all([counts(), responses(), values()])
    return answer({ groups, users, closed, times, value })
  })

  app.get('/:role/me/agenda', async (request) => {
    const role = roleOf(request)
    const { run, answer } = runner(request)
    const zone = statement(STATEMENT_NAMES.agendaTimeZone(role))
    await run(pool, zone.text, zone.params)
    const lists = Object.keys(spec.statements)
      .filter((name) => name.startsWith(STATEMENT_NAMES.agendaList(role)))
      .map((name) => spec.statements[name] as Statement)
    return answer(await Promise.all(lists.map((list) => run(pool, list.text, list.params))))
  })

  app.post('/:role/leads', async (request, reply) => {
    roleOf(request)
    const { run, answer } = runner(request)
    const body = request.body as { client_id: number }
    // Every statement the API sends, with the request's client; the audit row and event carry the
    // captured values (the floor does not recompute them).
    const lead = await transaction(async (client) => {
      let created: unknown
      for (const step of writeSteps(spec, 'lead.create')) {
        const rows = await run(client, step.text, bind(spec, step, { clientId: body.client_id }))
        if (step.text.startsWith('with "leads" as (insert into "leads"')) created = rows[0]
      }
      if (!created) throw new Error('no row inserted')
      return created
    })
    return reply.code(201).send(answer(lead))
  })

  app.patch('/:role/leads/:id/status', async (request, reply) => {
    roleOf(request)
    const { run, answer } = runner(request)
    const leadId = Number((request.params as { id: string }).id)
    const status = (request.body as { status: string }).status
    // The lock, the update with its audit row, the event and the timeline entry, as the API sends them.
    const lead = await transaction(async (client) => {
      const [lock, ...rest] = writeSteps(spec, 'lead.status')
      if (!lock) throw new Error('no status statements captured')
      const [current] = await run(client, lock.text, bind(spec, lock, { leadId }))
      if (!current) return undefined
      let updated: unknown
      for (const step of rest) {
        const rows = await run(client, step.text, bind(spec, step, { leadId, status }))
        if (step.text.startsWith('with "audit" as')) updated = rows[0]
      }
      return updated
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
