import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parse } from 'csv-parse/sync'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

describe('saved views', () => {
  let ctx: TestContext
  let owner: TestUser
  let colleague: TestUser
  let seller: TestUser
  let clientId: number
  const leads: Record<'newWeb' | 'newWhatsapp' | 'contactedWeb', number> = {
    newWeb: 0,
    newWhatsapp: 0,
    contactedWeb: 0,
  }

  const save = async (token: string, body: Record<string, unknown>) => {
    const response = await ctx.as(token, 'POST', '/views', body)
    assert.equal(response.statusCode, 201, response.body)
    assert.equal(response.headers.location, `/views/${response.json().id}`)
    return response.json() as { id: number; filters: Record<string, unknown>; sort: string | null; shared: boolean }
  }
  const leadIds = async (token: string, path: string) => {
    const response = await ctx.as(token, 'GET', path)
    assert.equal(response.statusCode, 200, response.body)
    return (response.json().items as { id: number }[]).map((item) => item.id)
  }

  before(async () => {
    ctx = await startTestContext()
    owner = await ctx.createUser('management')
    colleague = await ctx.createUser('management')
    seller = await ctx.createUser('sales')
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', { contact_name: 'Vista', phone: '+584125550001' })
    clientId = client.json().id
    const lead = async (channel: string, status: string) => {
      const response = await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: clientId, channel, status })
      assert.equal(response.statusCode, 201, response.body)
      return response.json().id as number
    }
    leads.newWeb = await lead('web', 'new')
    leads.newWhatsapp = await lead('whatsapp', 'new')
    leads.contactedWeb = await lead('web', 'contacted')
  })

  after(() => ctx?.close())

  it('applies a saved view on the list, the export and the stats; explicit parameters override it', async () => {
    const view = await save(owner.token, {
      name: 'Nuevos de la web',
      resource: 'leads',
      filters: { status: 'new', channel: ['web'] },
      sort: 'created_at',
    })
    // Stored as the list reads it: a repeatable filter as an array.
    assert.deepEqual(view.filters, { status: ['new'], channel: ['web'] })
    assert.deepEqual(await leadIds(owner.token, `/leads?view=${view.id}`), [leads.newWeb])
    // An explicit status replaces the view's; the view's channel and sort stay.
    assert.deepEqual(await leadIds(owner.token, `/leads?view=${view.id}&status=contacted&status=new`), [
      leads.newWeb,
      leads.contactedWeb,
    ])
    assert.deepEqual(
      await leadIds(owner.token, `/leads?view=${view.id}&sort=-created_at&status=contacted&status=new`),
      [leads.contactedWeb, leads.newWeb],
    )
    const stats = await ctx.as(owner.token, 'GET', `/leads/stats?view=${view.id}`)
    assert.equal(stats.statusCode, 200, stats.body)
    assert.equal(stats.json().total, 1)
    assert.equal((await ctx.as(owner.token, 'GET', `/leads/stats?view=${view.id}&channel=whatsapp`)).json().total, 1)
    const exported = await ctx.as(owner.token, 'GET', `/leads/export?view=${view.id}&format=csv`)
    assert.equal(exported.statusCode, 200, exported.body)
    const rows = parse(exported.body.replace(/^\uFEFF/, ''), { columns: true }) as { id: string }[]
    assert.deepEqual(
      rows.map((row) => Number(row.id)),
      [leads.newWeb],
    )
    const [audit] = (await ctx.auditRows('leads')).filter((row) => row.action === 'export')
    assert.deepEqual(audit?.new_values?.filters, {
      view: view.id,
      status: ['new'],
      channel: ['web'],
      sort: 'created_at',
    })
  })

  it('keeps an unshared view to its owner, and shows a shared one to everyone', async () => {
    const mine = await save(owner.token, { name: 'Mío', resource: 'clients', filters: { client_type: 'natural' } })
    for (const other of [colleague.token, seller.token, ctx.adminToken]) {
      assert.equal((await ctx.as(other, 'GET', `/views/${mine.id}`)).statusCode, 404)
      const applied = await ctx.as(other, 'GET', `/clients?view=${mine.id}`)
      assert.equal(applied.statusCode, 400)
      assert.equal(problemOf(applied).errors?.[0]?.field, 'view')
      const listed = (await ctx.as(other, 'GET', '/views')).json().items as { id: number }[]
      assert.ok(!listed.some((item) => item.id === mine.id))
    }
    const shared = await save(owner.token, { name: 'De todos', resource: 'leads', filters: {}, shared: true })
    assert.equal((await ctx.as(seller.token, 'GET', `/views/${shared.id}`)).statusCode, 200)
    assert.equal((await ctx.as(seller.token, 'GET', `/leads?view=${shared.id}`)).statusCode, 200)
    const listed = (await ctx.as(seller.token, 'GET', '/views?resource=leads')).json().items as { id: number }[]
    assert.ok(listed.some((item) => item.id === shared.id))
    // A view of clients on the leads list is refused, naming view.
    const wrongList = await ctx.as(owner.token, 'GET', `/leads?view=${mine.id}`)
    assert.equal(wrongList.statusCode, 400)
    assert.equal(problemOf(wrongList).errors?.[0]?.field, 'view')
    for (const bad of ['abc', '0', '999999']) {
      const response = await ctx.as(owner.token, 'GET', `/leads/stats?view=${bad}`)
      assert.equal(response.statusCode, 400, bad)
      assert.equal(problemOf(response).errors?.[0]?.field, 'view', bad)
    }
  })

  it('lets the owner and admins change a shared view, nobody else; every change is audited', async () => {
    const shared = await save(owner.token, { name: 'Compartida', resource: 'leads', shared: true })
    const patch = (token: string, body: Record<string, unknown>) => ctx.as(token, 'PATCH', `/views/${shared.id}`, body)
    assert.equal((await patch(colleague.token, { name: 'Ajena' })).statusCode, 403)
    assert.equal((await ctx.as(seller.token, 'DELETE', `/views/${shared.id}`)).statusCode, 403)
    const byAdmin = await patch(ctx.adminToken, { filters: { channel: 'whatsapp' } })
    assert.equal(byAdmin.statusCode, 200, byAdmin.body)
    assert.deepEqual(byAdmin.json().filters, { channel: ['whatsapp'] })
    const byOwner = await patch(owner.token, { name: 'Solo WhatsApp', shared: false })
    assert.equal(byOwner.statusCode, 200, byOwner.body)
    // The same filters again change nothing and write no audit row.
    assert.equal((await patch(owner.token, { filters: { channel: ['whatsapp'] } })).statusCode, 200)
    // No longer shared: the admin no longer sees it.
    assert.equal((await patch(ctx.adminToken, { name: 'x' })).statusCode, 404)
    assert.equal((await ctx.as(owner.token, 'DELETE', `/views/${shared.id}`)).statusCode, 204)
    assert.equal((await ctx.as(owner.token, 'GET', `/views/${shared.id}`)).statusCode, 404)
    const rows = await ctx.auditRows('saved_views', shared.id)
    assert.deepEqual(
      rows.map((row) => [row.action, row.user_id]),
      [
        ['create', owner.id],
        ['update', 1],
        ['update', owner.id],
        ['delete', owner.id],
      ],
    )
    assert.deepEqual(rows[1]?.new_values, { filters: { channel: ['whatsapp'] } })
    assert.deepEqual(rows[2]?.new_values, { name: 'Solo WhatsApp', shared: false })
  })

  it('checks filters and sort against the list when saved, naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'a', resource: 'leads', filters: { status: ['lost'] } }, 'filters.status'],
      [{ name: 'a', resource: 'leads', filters: { has_email: true } }, 'filters.has_email'],
      [{ name: 'a', resource: 'clients', filters: { created_from: 'ayer' } }, 'filters.created_from'],
      [{ name: 'a', resource: 'leads', filters: { limit: 10 } }, 'filters.limit'],
      [{ name: 'a', resource: 'leads', filters: { view: 3 } }, 'filters.view'],
      [{ name: 'a', resource: 'clients', sort: 'status_changed_at' }, 'sort'],
      [{ name: 'a', resource: 'orders' }, 'resource'],
      [{ name: '', resource: 'leads' }, 'name'],
    ]
    const before = (await ctx.auditRows('saved_views')).length
    for (const [body, field] of cases) {
      const response = await ctx.as(owner.token, 'POST', '/views', body)
      assert.equal(response.statusCode, 400, `${JSON.stringify(body)}: ${response.body}`)
      assert.ok(
        problemOf(response).errors?.some((error) => error.field === field),
        `${JSON.stringify(body)}: ${response.body}`,
      )
    }
    const view = await save(owner.token, { name: 'Bien', resource: 'leads' })
    const badPatch = await ctx.as(owner.token, 'PATCH', `/views/${view.id}`, { filters: { channel: ['fax'] } })
    assert.equal(badPatch.statusCode, 400)
    assert.equal(problemOf(badPatch).errors?.[0]?.field, 'filters.channel')
    assert.equal((await ctx.auditRows('saved_views')).length, before + 1)
  })

  it('refuses filters nested deeper than a list of values, naming the field, however deep', async () => {
    let deep: unknown = 'new'
    for (let level = 0; level < 2000; level++) deep = [deep]
    let deepObject: unknown = 'new'
    for (let level = 0; level < 2000; level++) deepObject = { a: deepObject }
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ status: deep }, 'filters.status'],
      [{ status: deepObject }, 'filters.status'],
      [{ channel: [['web']] }, 'filters.channel'],
      [{ q: { text: 'x' } }, 'filters.q'],
      [{ status: null }, 'filters.status'],
    ]
    const view = await save(owner.token, { name: 'Plana', resource: 'leads' })
    for (const [filters, field] of cases) {
      for (const [method, url, body] of [
        ['POST', '/views', { name: 'Honda', resource: 'leads', filters }],
        ['PATCH', `/views/${view.id}`, { filters }],
      ] as const) {
        const response = await ctx.as(owner.token, method, url, body)
        const label = `${method} ${JSON.stringify(filters).slice(0, 40)}`
        assert.equal(response.statusCode, 400, `${label}: ${response.body.slice(0, 300)}`)
        assert.ok(
          problemOf(response).errors?.some((error) => error.field === field),
          `${label}: ${response.body.slice(0, 300)}`,
        )
      }
    }
  })
})
