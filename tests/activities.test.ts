import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createLead } from './helpers/fixtures.js'

describe('lead activities', () => {
  let ctx: TestContext
  let sales: TestUser
  let otherSales: TestUser
  let management: TestUser
  let clientId: number

  const newLead = (token: string, body: Record<string, unknown> = {}) =>
    createLead(ctx, { client_id: clientId, channel: 'manual', ...body }, token)
  const timeline = async (token: string, leadId: number, query = '') => {
    const response = await ctx.as(token, 'GET', `/leads/${leadId}/activities${query}`)
    assert.equal(response.statusCode, 200, response.body)
    return response.json() as { items: Array<Record<string, unknown>>; total: number; next_cursor: string | null }
  }

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    otherSales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      contact_name: 'Ana Pérez',
      phone: '+584121234567',
    })
    clientId = client.json().id
  })
  after(() => ctx.close())

  it('adds a note with its audit row and event, and reads it back', async () => {
    const lead = await newLead(sales.token)
    const response = await ctx.as(sales.token, 'POST', `/leads/${lead.id}/activities`, {
      type: 'call',
      body: 'Llamó; quiere la cotización',
      occurred_at: '2026-11-26T20:05:00-04:00',
    })
    assert.equal(response.statusCode, 201, response.body)
    const activity = response.json()
    assert.equal(response.headers.location, `/leads/${lead.id}/activities/${activity.id}`)
    assert.deepEqual(
      { ...activity, id: 0, created_at: 0 },
      {
        id: 0,
        lead_id: lead.id,
        type: 'call',
        body: 'Llamó; quiere la cotización',
        direction: null,
        occurred_at: '2026-11-27T00:05:00.000Z',
        created_by: sales.id,
        created_at: 0,
        meta: {},
      },
    )
    const read = await ctx.as(sales.token, 'GET', response.headers.location as string)
    assert.deepEqual(read.json(), activity)

    const [audit] = await ctx.auditRows('lead_activities', activity.id)
    assert.equal(audit?.action, 'create')
    assert.equal(audit?.user_id, sales.id)
    assert.equal(audit?.new_values?.body, 'Llamó; quiere la cotización')
    const events = await ctx.db
      .selectFrom('events')
      .select(['type', 'actor', 'data'])
      .where('resource_key', '=', `lead_activity:${activity.id}`)
      .execute()
    assert.deepEqual(
      events.map((event) => [event.type, event.actor, (event.data as { object: unknown }).object]),
      [['lead.activity_added', { type: 'user', id: sales.id, name: sales.username }, activity]],
    )
  })

  it('records status changes and assignments as they happen, newest first, paged', async () => {
    const lead = await newLead(ctx.adminToken)
    const note = await ctx.as(ctx.adminToken, 'POST', `/leads/${lead.id}/activities`, {
      type: 'note',
      body: 'Primera nota',
    })
    assert.equal(note.statusCode, 201)
    assert.equal(
      (await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })).statusCode,
      200,
    )
    assert.equal(
      (await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: sales.id })).statusCode,
      200,
    )
    // The same status again changes nothing, and adds nothing to the timeline.
    await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })

    const page = await timeline(sales.token, lead.id)
    assert.deepEqual(
      page.items.map((item) => [item.type, item.meta, item.created_by]),
      [
        ['assignment', { from: null, to: sales.id }, 1],
        ['status_change', { from: 'new', to: 'contacted' }, 1],
        ['note', {}, 1],
      ],
    )
    const first = await timeline(sales.token, lead.id, '?limit=2')
    assert.equal(first.items.length, 2)
    const rest = await timeline(sales.token, lead.id, `?limit=2&cursor=${encodeURIComponent(first.next_cursor ?? '')}`)
    assert.deepEqual(
      rest.items.map((item) => item.type),
      ['note'],
    )
    assert.equal(rest.next_cursor, null)
  })

  it('keeps sales users to their own leads: 404 on another’s, whatever the verb', async () => {
    const theirs = await newLead(otherSales.token)
    const note = await ctx.as(otherSales.token, 'POST', `/leads/${theirs.id}/activities`, { type: 'note', body: 'Mía' })
    const noteId = note.json().id
    for (const [method, url, body] of [
      ['GET', `/leads/${theirs.id}/activities`],
      ['GET', `/leads/${theirs.id}/activities/${noteId}`],
      ['POST', `/leads/${theirs.id}/activities`, { type: 'note', body: 'Intruso' }],
      ['DELETE', `/leads/${theirs.id}/activities/${noteId}`],
    ] as const) {
      const response = await ctx.as(sales.token, method, url, body)
      assert.equal(response.statusCode, 404, `${method} ${url}`)
      assert.equal(problemOf(response).code, 'not_found')
    }
    const rows = await ctx.db.selectFrom('lead_activities').select('id').where('lead_id', '=', theirs.id).execute()
    assert.equal(rows.length, 1)
    assert.equal((await timeline(management.token, theirs.id)).total, 1)
  })

  it('lets the author, admin and management delete people’s activities, never the system’s', async () => {
    const lead = await newLead(sales.token)
    const mine = (await ctx.as(sales.token, 'POST', `/leads/${lead.id}/activities`, { type: 'note', body: 'a' })).json()
    const byManagement = (
      await ctx.as(management.token, 'POST', `/leads/${lead.id}/activities`, { type: 'meeting', body: 'b' })
    ).json()
    const other = await ctx.as(sales.token, 'DELETE', `/leads/${lead.id}/activities/${byManagement.id}`)
    assert.equal(other.statusCode, 403)
    assert.equal((await ctx.as(sales.token, 'DELETE', `/leads/${lead.id}/activities/${mine.id}`)).statusCode, 204)
    assert.equal(
      (await ctx.as(management.token, 'DELETE', `/leads/${lead.id}/activities/${byManagement.id}`)).statusCode,
      204,
    )
    const audit = await ctx.auditRows('lead_activities', mine.id)
    assert.deepEqual(
      audit.map((row) => [row.action, row.user_id]),
      [
        ['create', sales.id],
        ['delete', sales.id],
      ],
    )

    await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })
    const [statusChange] = (await timeline(sales.token, lead.id)).items
    const refused = await ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id}/activities/${statusChange?.id}`)
    assert.equal(refused.statusCode, 409)
    assert.equal(problemOf(refused).code, 'activity_not_deletable')
    const wrongLead = await ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id + 1000}/activities/${statusChange?.id}`)
    assert.equal(wrongLead.statusCode, 404)
  })

  it('refuses bad input naming the field, and the system’s types', async () => {
    const lead = await newLead(sales.token)
    for (const [body, field] of [
      [{ type: 'whatsapp', body: 'x' }, 'type'],
      [{ type: 'note', body: '   ' }, 'body'],
      [{ type: 'note', body: 'x'.repeat(10_001) }, 'body'],
      [{ type: 'note', body: 'x', occurred_at: 'yesterday' }, 'occurred_at'],
    ] as const) {
      const response = await ctx.as(sales.token, 'POST', `/leads/${lead.id}/activities`, body)
      assert.equal(response.statusCode, 400, JSON.stringify(body))
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        [field],
      )
    }
    assert.equal((await timeline(sales.token, lead.id)).total, 0)
  })

  it('keeps a trashed lead’s activities, and takes them away when the lead is purged', async () => {
    const lead = await newLead(ctx.adminToken)
    await ctx.as(ctx.adminToken, 'POST', `/leads/${lead.id}/activities`, { type: 'email', body: 'Enviado' })
    const activitiesOf = () =>
      ctx.db.selectFrom('lead_activities').select('id').where('lead_id', '=', lead.id).execute()
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id}`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}/activities`)).statusCode, 404)
    assert.equal((await activitiesOf()).length, 1, 'kept for a restore')
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/leads/${lead.id}`)).statusCode, 204)
    assert.equal((await activitiesOf()).length, 0)
  })
})
