import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { type SeedResult, seedDemo } from '../scripts/seed/demo.js'
import { DEMO_MANAGER, demoSalesUsername } from '../scripts/seed/users.js'
import { normalizePhone } from '../src/phone.js'
import { startTestContext, type TestContext } from './helpers/context.js'

const CLIENTS = 300
const LEADS = 1500
const SALES_USERS = 3
// Small batches, so that the batching and its progress run more than once.
const OPTIONS = { clients: CLIENTS, leads: LEADS, salesUsers: SALES_USERS, clientBatchSize: 120, leadBatchSize: 600 }

async function count(ctx: TestContext, table: 'clients' | 'leads' | 'users'): Promise<number> {
  const row = await ctx.db.selectFrom(table).select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow()
  return Number(row.count)
}

describe('seed:demo', () => {
  let ctx: TestContext
  let first: SeedResult
  const messages: string[] = []

  before(async () => {
    ctx = await startTestContext()
    first = await seedDemo(ctx.db, OPTIONS, (message) => messages.push(message))
  })
  after(() => ctx?.close())

  it('adds the requested users, clients and leads, reporting progress', async () => {
    assert.equal(first.usersCreated, SALES_USERS + 1)
    assert.equal(first.clientsAdded, CLIENTS)
    assert.equal(first.leadsAdded, LEADS)
    assert.equal(await count(ctx, 'clients'), CLIENTS)
    assert.equal(await count(ctx, 'leads'), LEADS)
    assert.ok(messages.some((message) => message.startsWith('clients: 120 / 300')))
    assert.ok(messages.some((message) => message.startsWith('leads: 1,500 / 1,500')))
    assert.match(messages.at(-1) ?? '', /^done: /)
  })

  it('makes sales users and a manager sharing one hash of demo-password, audited without secrets', async () => {
    const users = await ctx.db
      .selectFrom('users')
      .select(['id', 'username', 'role', 'password_hash'])
      .where('username', 'in', [DEMO_MANAGER, demoSalesUsername(1), demoSalesUsername(2), demoSalesUsername(3)])
      .execute()
    assert.equal(users.length, SALES_USERS + 1)
    assert.equal(users.find((user) => user.username === DEMO_MANAGER)?.role, 'management')
    assert.equal(users.filter((user) => user.role === 'sales').length, SALES_USERS)
    assert.equal(new Set(users.map((user) => user.password_hash)).size, 1)
    const login = await ctx.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: demoSalesUsername(1), password: 'demo-password' },
    })
    assert.equal(login.statusCode, 200, login.body)
    for (const user of users) {
      const rows = await ctx.auditRows('users', user.id)
      assert.equal(rows.length, 1)
      assert.equal(rows[0]?.action, 'create')
      assert.equal(rows[0]?.new_values?.username, user.username)
      assert.equal(rows[0]?.new_values?.password_hash, undefined)
      assert.equal(rows[0]?.new_values?.token_version, undefined)
    }
  })

  it('gives every client and lead exactly one create audit row, without generated columns', async () => {
    for (const table of ['clients', 'leads'] as const) {
      const wrong = await sql<{ id: number; rows: number }>`
        select t.id, count(a.id)::int as rows
        from ${sql.table(table)} t
        left join audit_logs a on a.table_name = ${table} and a.record_id = t.id and a.action = 'create'
        group by t.id
        having count(a.id) <> 1`.execute(ctx.db)
      assert.deepEqual(wrong.rows, [], table)
    }
    const [client] = await ctx.auditRows('clients', 1)
    assert.equal(client?.username, 'seed')
    assert.equal(client?.user_id, null)
    assert.ok(client?.new_values?.phone)
    assert.ok(!('search_text' in (client?.new_values ?? {})))
    const lead = await ctx.db
      .selectFrom('audit_logs')
      .select('new_values')
      .where('table_name', '=', 'leads')
      .executeTakeFirstOrThrow()
    const values = lead.new_values as Record<string, unknown>
    assert.ok(values.client_id)
    assert.ok(!('search_vector' in values))
  })

  it('makes unique, valid E.164 phones and both client types', async () => {
    const clients = await ctx.db
      .selectFrom('clients')
      .select(['phone', 'client_type', 'company_name', 'email', 'created_at', 'updated_at'])
      .execute()
    assert.equal(new Set(clients.map((client) => client.phone)).size, clients.length)
    for (const client of clients.slice(0, 150)) {
      const result = normalizePhone(client.phone, 'VE')
      assert.ok(result.ok, `${client.phone}: ${result.ok ? '' : result.reason}`)
      assert.equal(result.e164, client.phone)
    }
    const venezuelan = clients.filter((client) => client.phone.startsWith('+58')).length
    assert.ok(venezuelan > clients.length * 0.7 && venezuelan < clients.length, `${venezuelan} Venezuelan`)
    const juridical = clients.filter((client) => client.client_type === 'juridical')
    assert.ok(juridical.length > 0 && juridical.length < clients.length)
    assert.ok(juridical.every((client) => client.company_name))
    assert.ok(clients.some((client) => client.email !== null))
    for (const client of clients) {
      if (client.email !== null) assert.match(client.email, /^[a-z]+[._][a-z]+\d+@[a-z.]+$/)
      assert.ok(client.updated_at >= client.created_at)
    }
  })

  it('spreads leads over every channel and status, with consistent dates and sales assignees', async () => {
    const stats = await sql<{ channels: string[]; statuses: string[]; bad_dates: number; new_changed: number }>`
      select array_agg(distinct channel::text) as channels, array_agg(distinct status::text) as statuses,
        count(*) filter (where status_changed_at < created_at or updated_at < status_changed_at)::int as bad_dates,
        count(*) filter (where status = 'new' and status_changed_at <> created_at)::int as new_changed
      from leads`.execute(ctx.db)
    const row = stats.rows[0]
    assert.deepEqual(row?.channels.sort(), ['instagram', 'manual', 'web', 'whatsapp'])
    assert.deepEqual(row?.statuses.sort(), ['closed', 'contacted', 'discarded', 'new', 'quoted'])
    assert.equal(row?.bad_dates, 0)
    assert.equal(row?.new_changed, 0)
    const assignees = await sql<{ role: string | null; leads: number }>`
      select u.role::text as role, count(*)::int as leads
      from leads l left join users u on u.id = l.assigned_to
      group by 1`.execute(ctx.db)
    const byRole = Object.fromEntries(assignees.rows.map((r) => [r.role ?? 'none', r.leads]))
    assert.deepEqual(Object.keys(byRole).sort(), ['none', 'sales'])
    assert.ok((byRole.sales ?? 0) > LEADS * 0.6, `${byRole.sales} assigned`)
  })

  it('adds the same counts again when run a second time', async () => {
    const second = await seedDemo(ctx.db, OPTIONS, () => {})
    assert.equal(second.usersCreated, 0)
    assert.equal(second.clientsAdded, CLIENTS)
    assert.equal(second.leadsAdded, LEADS)
    assert.equal(await count(ctx, 'clients'), 2 * CLIENTS)
    assert.equal(await count(ctx, 'leads'), 2 * LEADS)
    assert.equal(await count(ctx, 'users'), SALES_USERS + 2)
    const audits = await sql<{ table_name: string; rows: number }>`
      select table_name::text, count(*)::int as rows from audit_logs where action = 'create' group by 1`.execute(ctx.db)
    const byTable = Object.fromEntries(audits.rows.map((r) => [r.table_name, r.rows]))
    assert.deepEqual(byTable, { clients: 2 * CLIENTS, leads: 2 * LEADS, users: SALES_USERS + 2 })
  })
})
