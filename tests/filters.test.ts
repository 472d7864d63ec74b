import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parse } from 'csv-parse/sync'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

/**
 * Each filter of GET /leads and GET /clients narrows the list, the export and (leads) the stats to
 * the same rows: the three read one filter builder.
 */
describe('filters across lists, exports and stats', () => {
  let ctx: TestContext
  let seller: TestUser
  let otherSeller: TestUser
  const client: Record<'natural' | 'juridical' | 'quiet', number> = { natural: 0, juridical: 0, quiet: 0 }
  const lead: Record<'one' | 'two' | 'three' | 'four', number> = { one: 0, two: 0, three: 0, four: 0 }

  const ids = (response: { statusCode: number; body: string; json(): { items: { id: number }[] } }) => {
    assert.equal(response.statusCode, 200, response.body)
    return response
      .json()
      .items.map((item) => item.id)
      .sort((a, b) => a - b)
  }
  const exportedIds = (response: { statusCode: number; body: string }) => {
    assert.equal(response.statusCode, 200, response.body)
    const rows = parse(response.body.replace(/^\uFEFF/, ''), { columns: true }) as { id: string }[]
    return rows.map((row) => Number(row.id)).sort((a, b) => a - b)
  }
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b)

  before(async () => {
    ctx = await startTestContext()
    seller = await ctx.createUser('sales')
    otherSeller = await ctx.createUser('sales')
    const newClient = async (body: Record<string, unknown>) => (await createClient(ctx, body)).id
    client.natural = await newClient({ contact_name: 'Uno', phone: '+584121000001', email: 'uno@example.com' })
    client.juridical = await newClient({
      client_type: 'juridical',
      contact_name: 'Dos',
      company_name: 'Dos C.A.',
      phone: '+584121000002',
    })
    client.quiet = await newClient({ contact_name: 'Tres', phone: '+584121000003' })
    const newLead = async (body: { client_id: number } & Record<string, unknown>) => (await createLead(ctx, body)).id
    lead.one = await newLead({ client_id: client.natural, assigned_to: seller.id })
    lead.two = await newLead({ client_id: client.natural, assigned_to: otherSeller.id, status: 'contacted' })
    lead.three = await newLead({ client_id: client.juridical, assigned_to: null, status: 'closed' })
    lead.four = await newLead({ client_id: client.juridical, assigned_to: seller.id, status: 'quoted' })
    // Known dates, one month apart, for the range filters.
    const months = { one: '01', two: '02', three: '03', four: '04' } as const
    for (const [name, month] of Object.entries(months)) {
      await ctx.db
        .updateTable('leads')
        .set({
          updated_at: new Date(`2026-${month}-10T12:00:00Z`),
          status_changed_at: new Date(`2026-${month}-05T12:00:00Z`),
        })
        .where('id', '=', lead[name as keyof typeof lead])
        .execute()
    }
    // The timeline rows written so far (assignments) happened long ago; one call in March.
    await ctx.db
      .updateTable('lead_activities')
      .set({ occurred_at: new Date('2026-01-01T00:00:00Z') })
      .execute()
    const call = await ctx.as(ctx.adminToken, 'POST', `/leads/${lead.three}/activities`, {
      type: 'call',
      body: 'Preguntó por el precio',
      occurred_at: '2026-03-15T10:00:00Z',
    })
    assert.equal(call.statusCode, 201, call.body)
    for (const [name, month] of Object.entries({ natural: '01', juridical: '02', quiet: '03' })) {
      await ctx.db
        .updateTable('clients')
        .set({ updated_at: new Date(`2026-${month}-10T12:00:00Z`) })
        .where('id', '=', client[name as keyof typeof client])
        .execute()
    }
  })

  after(() => ctx?.close())

  const LEAD_CASES: Array<[string, () => string, () => number[]]> = [
    ['updated_from', () => 'updated_from=2026-02-01', () => [lead.two, lead.three, lead.four]],
    ['updated_to (a whole day)', () => 'updated_to=2026-02-10', () => [lead.one, lead.two]],
    [
      'updated_from and updated_to',
      () => 'updated_from=2026-02-01&updated_to=2026-03-31T23:59:59Z',
      () => [lead.two, lead.three],
    ],
    ['status_changed_from', () => 'status_changed_from=2026-03-01', () => [lead.three, lead.four]],
    ['status_changed_to', () => 'status_changed_to=2026-01-31', () => [lead.one]],
    [
      'assigned_to repeated',
      () => `assigned_to=${seller.id}&assigned_to=none`,
      () => [lead.one, lead.three, lead.four],
    ],
    [
      'assigned_to, two users',
      () => `assigned_to=${seller.id}&assigned_to=${otherSeller.id}`,
      () => [lead.one, lead.two, lead.four],
    ],
    ['client_type', () => 'client_type=juridical', () => [lead.three, lead.four]],
    ['has_activity_since', () => 'has_activity_since=2026-03-01', () => [lead.three]],
  ]

  for (const [name, query, expected] of LEAD_CASES) {
    it(`narrows the lead list, export and stats alike: ${name}`, async () => {
      const wanted = sorted(expected())
      assert.ok(wanted.length > 0 && wanted.length < 4, 'the case narrows')
      assert.deepEqual(ids(await ctx.as(ctx.adminToken, 'GET', `/leads?${query()}&limit=200`)), wanted, 'list')
      assert.deepEqual(
        exportedIds(await ctx.as(ctx.adminToken, 'GET', `/leads/export?${query()}&format=csv`)),
        wanted,
        'export',
      )
      const stats = await ctx.as(ctx.adminToken, 'GET', `/leads/stats?${query()}`)
      assert.equal(stats.statusCode, 200, stats.body)
      const body = stats.json()
      assert.equal(body.total, wanted.length, 'stats total')
      const byStatus = Object.values(body.by_status as Record<string, number>).reduce((sum, count) => sum + count, 0)
      assert.equal(byStatus, wanted.length, 'stats by_status')
    })
  }

  const CLIENT_CASES: Array<[string, () => string, () => number[]]> = [
    ['has_email=true', () => 'has_email=true', () => [client.natural]],
    ['has_email=false', () => 'has_email=false', () => [client.juridical, client.quiet]],
    ['has_open_leads=true', () => 'has_open_leads=true', () => [client.natural, client.juridical]],
    ['has_open_leads=false', () => 'has_open_leads=false', () => [client.quiet]],
    ['updated_from', () => 'updated_from=2026-02-01', () => [client.juridical, client.quiet]],
    ['updated_to', () => 'updated_to=2026-01-31', () => [client.natural]],
  ]

  for (const [name, query, expected] of CLIENT_CASES) {
    it(`narrows the client list and export alike: ${name}`, async () => {
      const wanted = sorted(expected())
      assert.deepEqual(ids(await ctx.as(ctx.adminToken, 'GET', `/clients?${query()}&limit=200`)), wanted, 'list')
      assert.deepEqual(
        exportedIds(await ctx.as(ctx.adminToken, 'GET', `/clients/export?${query()}&format=csv`)),
        wanted,
        'export',
      )
    })
  }

  it('counts only the open leads a sales user may see in has_open_leads', async () => {
    // The juridical client's open lead is the first seller's; the natural client has one of each.
    const theirs = ids(await ctx.as(otherSeller.token, 'GET', '/clients?has_open_leads=true'))
    assert.deepEqual(theirs, [client.natural])
    const mine = ids(await ctx.as(seller.token, 'GET', '/clients?has_open_leads=true'))
    assert.deepEqual(mine, sorted([client.natural, client.juridical]))
    // And sales users' lead filters stay within their own leads.
    assert.deepEqual(ids(await ctx.as(otherSeller.token, 'GET', `/leads?assigned_to=${seller.id}`)), [])
  })

  it('refuses a bad filter with a 400 naming it, on the list, the export and the stats', async () => {
    const cases: Array<[string, string, string]> = [
      ['/leads', 'updated_from=yesterday', 'updated_from'],
      ['/leads/export', 'status_changed_from=2026-02-30', 'status_changed_from'],
      ['/leads/stats', 'status_changed_from=2026-03-01&status_changed_to=2026-02-01', 'status_changed_to'],
      ['/leads', 'client_type=company', 'client_type'],
      ['/leads/export', 'has_activity_since=last-week', 'has_activity_since'],
      ['/leads/stats', 'assigned_to=someone', 'assigned_to'],
      ['/clients', 'has_email=maybe', 'has_email'],
      ['/clients/export', 'has_open_leads=2', 'has_open_leads'],
      ['/clients', 'updated_to=2026-13-01', 'updated_to'],
      ['/clients', 'deleted=true', 'deleted'],
    ]
    for (const [path, query, field] of cases) {
      const response = await ctx.as(ctx.adminToken, 'GET', `${path}?${query}`)
      assert.equal(response.statusCode, 400, `${path}?${query}: ${response.body}`)
      assert.ok(
        problemOf(response).errors?.some((error) => error.field === field),
        `${path}?${query}: ${response.body}`,
      )
    }
  })
})
