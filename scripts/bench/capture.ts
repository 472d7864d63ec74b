import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { login } from '../../src/account/service.js'
import { getAgenda } from '../../src/agenda/queries.js'
import type { AuthenticatedActor } from '../../src/auth/authenticate.js'
import { getClient, searchClients } from '../../src/clients/queries.js'
import type { Database } from '../../src/db/database.js'
import type { DB } from '../../src/db/types.js'
import { changeLeadStatus, createLead } from '../../src/leads/commands.js'
import { leadsOfClient, listLeads } from '../../src/leads/queries.js'
import { leadStats } from '../../src/leads/stats.js'
import { search } from '../../src/search/service.js'
import { callerTimeZone } from '../../src/tasks/queries.js'
import { BENCH_ADMIN, ROLES, SALES_NOTE } from './common.js'
import { type BenchUser, monthRange, type Samples } from './data.js'
import {
  bind,
  bindFullText,
  type FloorSpec,
  type Inputs,
  type Role,
  STATEMENT_NAMES,
  type Statement,
  searchLength,
} from './floor.js'

class Rollback extends Error {}

/** GET /leads?status=new&sort=-created_at&limit=50, as the route passes it to the service. */
export const LIST_QUERY = { status: ['new' as const], sort: '-created_at' as const, limit: 50, offset: 0 }

const isTransactionControl = (text: string) => /^\s*(begin|commit|rollback)\b/i.test(text)

/**
 * Runs the API's own services in-process on a Kysely that writes down every statement, with the
 * same arguments its routes pass them, and names each statement for the floor.
 */
export async function captureStatements(
  url: string,
  users: Record<Role, BenchUser>,
  samples: Samples,
  defaultTimeZone: string,
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
      if (!client) throw new Error('GET /clients/{id} sent no statements')
      statements[STATEMENT_NAMES.clientGet] = client
      await leadsOfClient(db, actor(role), sentinels.clientId)
      const leads = take()
      statements[STATEMENT_NAMES.clientLeads(role)] = pick(leads, 'client leads', (text) => / limit /.test(text))
      statements[STATEMENT_NAMES.clientLeadsCount(role)] = pick(leads, 'client leads_total', (text) =>
        text.includes('count(*)'),
      )

      const isCount = (text: string) => text.startsWith('select count(*)')
      await listLeads(db, actor(role), LIST_QUERY)
      const list = take()
      statements[STATEMENT_NAMES.listItems(role)] = pick(list, 'list items', (text) => !isCount(text))
      statements[STATEMENT_NAMES.listCount(role)] = pick(list, 'list count', isCount)
      await listLeads(db, actor(role), { ...LIST_QUERY, cursor: samples.deepCursors[role] })
      statements[STATEMENT_NAMES.listDeepItems(role)] = pick(take(), 'deep list items', (text) => !isCount(text))

      for (const [variant, filter] of [
        [role, {}],
        [`${role}_month`, monthRange()],
      ] as const) {
        await leadStats(db, actor(role), filter)
        const stats = take()
        const isResponses = (text: string) => text.includes('response_seconds')
        const isValue = (text: string) => text.includes('currency')
        statements[STATEMENT_NAMES.statsGroups(variant)] = pick(
          stats,
          'stats groups',
          (text) => text.includes('grouping sets') && !isResponses(text) && !isValue(text),
        )
        statements[STATEMENT_NAMES.statsValueOpen(variant)] = pick(
          stats,
          'stats value by status',
          (text) => isValue(text) && text.includes('stage_probability'),
        )
        statements[STATEMENT_NAMES.statsValueWon(variant)] = pick(
          stats,
          'stats value won per month',
          (text) => isValue(text) && !text.includes('stage_probability'),
        )
        statements[STATEMENT_NAMES.statsSettings(variant)] = pick(stats, 'stats settings', (text) =>
          text.includes('"pipeline_settings"'),
        )
        statements[STATEMENT_NAMES.statsResponses(variant)] = pick(stats, 'stats response times', isResponses)
        statements[STATEMENT_NAMES.statsResponsesSetting(variant)] = pick(stats, 'stats response setting', (text) =>
          text.startsWith('set local'),
        )
        statements[STATEMENT_NAMES.statsClosed(variant)] = pick(
          stats,
          'stats closed per day',
          (text) => text.includes('closed_day') && !isResponses(text) && !isValue(text),
        )
        // Absent when no lead is assigned: then the floor never needs it either.
        const usersStatement = stats.find((statement) => statement.text.includes('from "users"'))
        if (usersStatement) statements[STATEMENT_NAMES.statsUsers(variant)] = usersStatement
      }
    }

    // GET /me/agenda: the caller's own, so one capture each; its lists run in parallel, kept in text order.
    for (const role of ROLES) {
      const timeZone = await callerTimeZone(db, users[role].id, defaultTimeZone)
      const [zone] = take()
      if (!zone) throw new Error('GET /me/agenda read no time zone')
      statements[STATEMENT_NAMES.agendaTimeZone(role)] = zone
      await getAgenda(db, actor(role), timeZone)
      const lists = take().sort((a, b) => a.text.localeCompare(b.text))
      if (lists.length !== 8) throw new Error(`expected eight agenda statements, found ${lists.length}`)
      lists.forEach((list, index) => {
        statements[STATEMENT_NAMES.agendaList(role, index)] = list
      })
    }

    // GET /search: scoped for sales, so one capture each.
    for (const role of ROLES) {
      await search(db, actor(role), { q: sentinels.qFullText, types: 'clients,leads', limit: 20, offset: 0 }, 'VE')
      const fullText = take()
      statements[STATEMENT_NAMES.fullTextSetting] = pick(fullText, 'search setting', (text) => text.startsWith('set '))
      statements[STATEMENT_NAMES.fullTextItems(role)] = pick(fullText, 'search hits', (text) =>
        text.includes('json_build_array'),
      )
      statements[STATEMENT_NAMES.fullTextCount(role)] = pick(fullText, 'search hits count', (text) =>
        text.startsWith('select count(*)'),
      )
    }

    // Search is the same for every role; a query under four letters sends other SQL.
    for (const [length, q] of [
      ['long', sentinels.q],
      ['short', sentinels.qShort],
    ] as const) {
      await searchClients(db, { q, limit: 20, offset: 0 })
      const search = take()
      statements[STATEMENT_NAMES.searchItems(length)] = pick(search, 'search items', (text) =>
        text.includes('json_build_array'),
      )
      statements[STATEMENT_NAMES.searchCount(length)] = pick(search, 'search count', (text) =>
        text.startsWith('select count(*)'),
      )
    }

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
    take().forEach((step, index) => {
      statements[STATEMENT_NAMES.createStep(index)] = step
    })

    await rolledBack((trx) => changeLeadStatus(trx, actor('admin'), sentinels.leadId, 'quoted'))
    const status = take()
    if (!status[0]?.text.endsWith('for update')) throw new Error('a status change starts with its lead lock')
    status.forEach((step, index) => {
      statements[STATEMENT_NAMES.statusStep(index)] = step
    })

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
export function apiStatements(spec: FloorSpec, scenario: string, role: Role, inputs: Inputs): Statement[] {
  const get = (name: string) => {
    const statement = spec.statements[name]
    if (!statement) throw new Error(`no statement ${name}`)
    return { text: statement.text, params: bind(spec, statement, inputs) }
  }
  const optional = (name: string) => (spec.statements[name] ? [get(name)] : [])
  switch (scenario) {
    case 'client':
      return [
        get(STATEMENT_NAMES.clientGet),
        get(STATEMENT_NAMES.clientLeads(role)),
        get(STATEMENT_NAMES.clientLeadsCount(role)),
      ]
    case 'list':
      return [get(STATEMENT_NAMES.listItems(role)), get(STATEMENT_NAMES.listCount(role))]
    case 'list_deep':
      return [get(STATEMENT_NAMES.listDeepItems(role)), get(STATEMENT_NAMES.listCount(role))]
    case 'search': {
      const length = searchLength(inputs.q ?? '')
      return [get(STATEMENT_NAMES.searchItems(length)), get(STATEMENT_NAMES.searchCount(length))]
    }
    case 'fulltext': {
      const q = inputs.q ?? spec.sentinels.qFullText
      const withTerms = (name: string) => {
        const statement = spec.statements[name] as Statement
        return { text: statement.text, params: bindFullText(spec, statement, q) }
      }
      return [
        get(STATEMENT_NAMES.fullTextSetting),
        withTerms(STATEMENT_NAMES.fullTextItems(role)),
        withTerms(STATEMENT_NAMES.fullTextCount(role)),
      ]
    }
    case 'stats':
    case 'stats_month': {
      const variant = scenario === 'stats' ? role : `${role}_month`
      return [
        get(STATEMENT_NAMES.statsGroups(variant)),
        get(STATEMENT_NAMES.statsClosed(variant)),
        ...optional(STATEMENT_NAMES.statsUsers(variant)),
        get(STATEMENT_NAMES.statsSettings(variant)),
        get(STATEMENT_NAMES.statsResponsesSetting(variant)),
        get(STATEMENT_NAMES.statsResponses(variant)),
        get(STATEMENT_NAMES.statsValueOpen(variant)),
        get(STATEMENT_NAMES.statsValueWon(variant)),
      ]
    }
    case 'agenda':
      return [
        get(STATEMENT_NAMES.agendaTimeZone(role)),
        ...Object.keys(spec.statements)
          .filter((name) => name.startsWith(STATEMENT_NAMES.agendaList(role)))
          .map(get),
      ]
    default:
      throw new Error(`no read scenario ${scenario}`)
  }
}
