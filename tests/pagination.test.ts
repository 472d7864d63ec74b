import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { SEARCH_CANDIDATES } from '../src/clients/queries.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

interface PageBody {
  items: Array<{ id: number }>
  total: number
  total_exact: boolean
  limit: number
  offset: number
  next_cursor: string | null
}

describe('lists: bounded totals and cursor pages', () => {
  let ctx: TestContext
  let sales: TestUser
  const JURIDICAL = 430

  /** Follows next_cursor from the first page to the last, collecting the ids in order. */
  async function walk(path: string, token = ctx.adminToken): Promise<{ ids: number[]; pages: PageBody[] }> {
    const ids: number[] = []
    const pages: PageBody[] = []
    const separator = path.includes('?') ? '&' : '?'
    let cursor: string | null = null
    do {
      const url: string = cursor === null ? path : `${path}${separator}cursor=${encodeURIComponent(cursor)}`
      const response = await ctx.as(token, 'GET', url)
      assert.equal(response.statusCode, 200, `${url}: ${response.body}`)
      const page = response.json() as PageBody
      pages.push(page)
      ids.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
      assert.ok(pages.length < 200, 'the walk does not end')
    } while (cursor !== null)
    return { ids, pages }
  }

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    // 10,050 clients in one statement, every one created at the same instant (ties broken by id),
    // JURIDICAL of them companies with names that repeat (ties on contact_name too).
    await sql`
      insert into clients (client_type, contact_name, company_name, phone, created_at, updated_at)
      select case when i <= ${JURIDICAL} then 'juridical'::client_type else 'natural' end,
             'Cliente ' || (i % 37), case when i <= ${JURIDICAL} then 'Empresa ' || i end,
             '+58414' || lpad(i::text, 7, '0'), timestamptz '2026-01-01', timestamptz '2026-01-01'
      from generate_series(1, 10050) as i`.execute(ctx.db)
  })
  after(() => ctx?.close())

  it('count up to 10,000 and say when the total is not exact', async () => {
    const all = (await ctx.as(ctx.adminToken, 'GET', '/clients?limit=5')).json() as PageBody
    assert.equal(all.total, 10_000)
    assert.equal(all.total_exact, false)
    assert.equal(all.items.length, 5)
    assert.equal(typeof all.next_cursor, 'string')
    const companies = (await ctx.as(ctx.adminToken, 'GET', '/clients?client_type=juridical&limit=5')).json()
    assert.equal(companies.total, JURIDICAL)
    assert.equal(companies.total_exact, true)
  })

  it('walk every row exactly once, in the order asked, by cursor', async () => {
    for (const sort of ['-created_at', 'created_at', 'contact_name', '-contact_name', 'updated_at']) {
      const { ids, pages } = await walk(`/clients?client_type=juridical&limit=97&sort=${sort}`)
      const descending = sort.startsWith('-')
      const column = sort.replace('-', '') as 'created_at' | 'contact_name' | 'updated_at'
      const expected = await ctx.db
        .selectFrom('clients')
        .select('id')
        .where('client_type', '=', 'juridical')
        .orderBy(column, descending ? 'desc' : 'asc')
        .orderBy('id', descending ? 'desc' : 'asc')
        .execute()
      assert.deepEqual(
        ids,
        expected.map((row) => row.id),
        sort,
      )
      assert.equal(pages.at(-1)?.next_cursor, null)
      assert.ok(pages.every((page) => page.total === JURIDICAL && page.total_exact))
    }
  })

  it('keep microseconds in a cursor: leads created within the same millisecond are neither skipped nor repeated', async () => {
    const clientId = (await ctx.db.selectFrom('clients').select('id').limit(1).executeTakeFirstOrThrow()).id
    await sql`
      insert into leads (client_id, channel, created_at, updated_at, status_changed_at, assigned_to)
      select ${clientId}, 'web', timestamptz '2026-03-01 10:00:00.123' + i * interval '1 microsecond',
             timestamptz '2026-03-01', timestamptz '2026-03-01', case when i % 2 = 0 then ${sales.id}::int end
      from generate_series(1, 250) as i`.execute(ctx.db)
    const { ids } = await walk('/leads?limit=7&sort=-created_at')
    const expected = await ctx.db
      .selectFrom('leads')
      .select('id')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute()
    assert.deepEqual(
      ids,
      expected.map((row) => row.id),
    )
    // A sales user walks their own leads only.
    const own = await walk('/leads?limit=50&sort=created_at', sales.token)
    assert.equal(own.ids.length, 125)
  })

  it('walk users by a column that may be null, and the audit log newest first', async () => {
    await ctx.createUser('management')
    await ctx.createUser('sales', { is_active: false })
    for (const sort of ['last_login_at', '-last_login_at']) {
      const { ids } = await walk(`/users?limit=1&sort=${sort}`)
      const users = await ctx.db.selectFrom('users').select(['id', 'last_login_at']).execute()
      const time = (user: { last_login_at: Date | null }) => user.last_login_at?.getTime() ?? Number.NEGATIVE_INFINITY
      const sign = sort.startsWith('-') ? -1 : 1
      const expected = users.sort((a, b) => sign * (time(a) - time(b) || a.id - b.id)).map((user) => user.id)
      assert.deepEqual(ids, expected, sort)
    }
    const { ids } = await walk('/audit-logs?table_name=users&limit=2')
    const rows = await ctx.auditRows('users')
    assert.deepEqual(ids, rows.map((row) => row.id).reverse())
  })

  it('refuse a cursor of other filters or sort, a forged one, and an offset past 10,000', async () => {
    const first = (await ctx.as(ctx.adminToken, 'GET', '/clients?client_type=juridical&limit=10')).json() as PageBody
    const cursor = encodeURIComponent(first.next_cursor as string)
    for (const url of [
      `/clients?client_type=natural&limit=10&cursor=${cursor}`,
      `/clients?client_type=juridical&sort=contact_name&limit=10&cursor=${cursor}`,
      `/clients?limit=10&cursor=${cursor}`,
      '/clients?cursor=not-a-cursor',
      `/clients?cursor=${Buffer.from(JSON.stringify({ k: ['x', 'y'], f: 'z' })).toString('base64url')}`,
      `/clients?client_type=juridical&cursor=${cursor}&offset=10`,
    ]) {
      const response = await ctx.as(ctx.adminToken, 'GET', url)
      assert.equal(response.statusCode, 400, url)
      const field = problemOf(response).errors?.[0]?.field
      assert.ok(field === 'cursor' || field === 'offset', `${url}: ${response.body}`)
    }
    // The same filters and sort, with a limit of its own, continue where the page ended.
    const next = await ctx.as(ctx.adminToken, 'GET', `/clients?client_type=juridical&limit=3&cursor=${cursor}`)
    assert.equal(next.statusCode, 200)
    assert.ok(next.json().items[0].id < (first.items.at(-1)?.id ?? 0))

    const deep = await ctx.as(ctx.adminToken, 'GET', '/clients?offset=10001')
    assert.equal(deep.statusCode, 400)
    assert.equal(problemOf(deep).errors?.[0]?.field, 'offset')
    assert.match(problemOf(deep).errors?.[0]?.message ?? '', /cursor/)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', '/clients?offset=10000&limit=1')).statusCode, 200)
    // Forged keys of the right shape but the wrong types are a 400, never a 500.
    const digest = JSON.parse(Buffer.from(first.next_cursor as string, 'base64url').toString()).f
    const forged = Buffer.from(JSON.stringify({ k: ['yesterday', 'x'], f: digest })).toString('base64url')
    const response = await ctx.as(ctx.adminToken, 'GET', `/clients?client_type=juridical&cursor=${forged}`)
    assert.equal(response.statusCode, 400)
  })

  it('page a search through its ranked candidates without repeating a client', async () => {
    const { ids, pages } = await walk('/clients/search?q=empresa&limit=50')
    assert.equal(new Set(ids).size, ids.length)
    // total counts every match; the pages rank the first SEARCH_CANDIDATES literal (and similar) matches.
    assert.equal(pages[0]?.total, JURIDICAL)
    assert.ok(ids.length >= SEARCH_CANDIDATES && ids.length <= JURIDICAL, String(ids.length))
    const all = await walk('/clients?q=empresa&limit=200')
    assert.equal(all.ids.length, JURIDICAL)
    const best = (await ctx.as(ctx.adminToken, 'GET', '/clients/search?q=Empresa%20123&limit=1')).json()
    assert.equal(best.items[0].company_name, 'Empresa 123')
  })

  it('show a client with its 20 most recent visible leads and how many there are', async () => {
    const clientId = (await ctx.db.selectFrom('leads').select('client_id').limit(1).executeTakeFirstOrThrow()).client_id
    const admin = (await ctx.as(ctx.adminToken, 'GET', `/clients/${clientId}`)).json()
    assert.equal(admin.leads_total, 250)
    assert.equal(admin.leads.length, 20)
    const newest = await ctx.db
      .selectFrom('leads')
      .select('id')
      .where('client_id', '=', clientId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(20)
      .execute()
    assert.deepEqual(
      admin.leads.map((lead: { id: number }) => lead.id),
      newest.map((row) => row.id),
    )
    const mine = (await ctx.as(sales.token, 'GET', `/clients/${clientId}`)).json()
    assert.equal(mine.leads_total, 125)
    assert.ok(mine.leads.every((lead: { assigned_to: number }) => lead.assigned_to === sales.id))
  })
})
