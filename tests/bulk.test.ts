import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createLead } from './helpers/fixtures.js'

interface Result {
  id: number
  status: number
  error?: { code: string; detail: string }
}

describe('bulk lead actions', () => {
  let ctx: TestContext
  let management: TestUser
  let seller: TestUser
  let otherSeller: TestUser
  let clientId: number

  const newLead = async (assignedTo: number | null = null) =>
    (await createLead(ctx, { client_id: clientId, assigned_to: assignedTo }, management.token)).id
  const tally = (results: Result[]) =>
    results.reduce<Record<number, number>>((counts, result) => {
      counts[result.status] = (counts[result.status] ?? 0) + 1
      return counts
    }, {})

  before(async () => {
    ctx = await startTestContext()
    management = await ctx.createUser('management')
    seller = await ctx.createUser('sales')
    otherSeller = await ctx.createUser('sales')
    const client = await ctx.as(management.token, 'POST', '/clients', {
      contact_name: 'Masivo',
      phone: '+584146660001',
    })
    clientId = client.json().id
  })
  after(() => ctx?.close())

  it('assigns 100 leads each on its own: 95 done, 3 not visible (404), 2 stale (412)', async () => {
    const ids: number[] = []
    for (let index = 0; index < 100; index += 1) ids.push(await newLead())
    const etags = new Map<number, string>()
    for (const id of ids.slice(0, 10)) {
      etags.set(id, String((await ctx.as(management.token, 'GET', `/leads/${id}`)).headers.etag))
    }
    // Three leads nobody sees any more (in the trash), two changed since their ETag was read.
    const gone = ids.slice(20, 23)
    for (const id of gone) assert.equal((await ctx.as(management.token, 'DELETE', `/leads/${id}`)).statusCode, 204)
    const stale = ids.slice(0, 2)
    for (const id of stale) {
      const changed = await ctx.as(management.token, 'PATCH', `/leads/${id}`, { sales_notes: 'Cambiado' })
      assert.equal(changed.statusCode, 200)
    }
    const leadAuditRows = async () => (await ctx.auditRows('leads')).length
    const auditBefore = await leadAuditRows()

    const items = ids.map((id) => ({ id, ...(etags.has(id) && { if_match: etags.get(id) }) }))
    const response = await ctx.as(management.token, 'POST', '/leads/bulk', {
      action: 'assign',
      assigned_to: seller.id,
      items,
    })
    assert.equal(response.statusCode, 200, response.body)
    const results = response.json().results as Result[]
    assert.deepEqual(
      results.map((result) => result.id),
      ids,
    )
    assert.deepEqual(tally(results), { 200: 95, 404: 3, 412: 2 })
    for (const id of gone) assert.equal(results.find((result) => result.id === id)?.status, 404)
    for (const id of stale) {
      const result = results.find((entry) => entry.id === id)
      assert.equal(result?.status, 412)
      assert.equal(result?.error?.code, 'precondition_failed')
    }
    // What the database holds: the 95 assigned with one audit row each; the stale ones untouched.
    const leads = await ctx.db.selectFrom('leads').select(['id', 'assigned_to']).where('id', 'in', ids).execute()
    const assigned = leads.filter((lead) => lead.assigned_to === seller.id).map((lead) => lead.id)
    assert.equal(assigned.length, 95)
    for (const id of [...stale, ...gone]) assert.ok(!assigned.includes(id))
    assert.equal(await leadAuditRows(), auditBefore + 95)
    const row = (await ctx.auditRows('leads', ids[50])).at(-1)
    assert.deepEqual(row?.new_values, { assigned_to: seller.id })
    assert.equal(row?.request_id, response.headers['x-request-id'])
  })

  it('changes statuses by the single route’s rules: scope for sales, transitions, roles', async () => {
    const own = [await newLead(seller.id), await newLead(seller.id)]
    const others = await newLead(otherSeller.id)
    const closed = await newLead(seller.id)
    assert.equal((await ctx.as(seller.token, 'PATCH', `/leads/${closed}/status`, { status: 'closed' })).statusCode, 200)

    const response = await ctx.as(seller.token, 'POST', '/leads/bulk', {
      action: 'status',
      status: 'contacted',
      ids: [...own, others, closed],
    })
    assert.equal(response.statusCode, 200, response.body)
    const results = response.json().results as Result[]
    assert.deepEqual(
      results.map((result) => [result.id, result.status]),
      [
        [own[0], 200],
        [own[1], 200],
        [others, 404],
        [closed, 409],
      ],
    )
    assert.equal(results[3]?.error?.code, 'invalid_transition')

    // Sales may not assign or delete: every item is refused as the single route would.
    const refused = await ctx.as(seller.token, 'POST', '/leads/bulk', { action: 'delete', ids: own })
    assert.deepEqual(
      (refused.json().results as Result[]).map((result) => result.status),
      [403, 403],
    )
    assert.equal((await ctx.as(seller.token, 'GET', `/leads/${own[0]}`)).statusCode, 200)

    const trashed = await ctx.as(management.token, 'POST', '/leads/bulk', { action: 'delete', ids: own })
    assert.deepEqual(
      (trashed.json().results as Result[]).map((result) => result.status),
      [200, 200],
    )
    const trash = (await ctx.as(management.token, 'GET', '/trash?type=leads')).json().items as Array<{ id: number }>
    for (const id of own) assert.ok(trash.some((lead) => lead.id === id))
  })

  it('refuses a malformed request as a whole, naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ action: 'assign', ids: [1] }, 'assigned_to'],
      [{ action: 'status', ids: [1] }, 'status'],
      [{ action: 'delete', ids: [1], items: [{ id: 1 }] }, 'items'],
      [{ action: 'delete' }, 'items'],
      [{ action: 'delete', ids: Array.from({ length: 501 }, (_, index) => index + 1) }, 'ids'],
      [{ action: 'assign', assigned_to: 999999, ids: [1] }, 'assigned_to'],
      [{ action: 'archive', ids: [1] }, 'action'],
    ]
    for (const [body, field] of cases) {
      const response = await ctx.as(management.token, 'POST', '/leads/bulk', body)
      assert.equal(response.statusCode, 400, JSON.stringify(body))
      assert.equal(problemOf(response).errors?.[0]?.field, field, JSON.stringify(body))
    }
  })
})
