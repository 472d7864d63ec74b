import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createLead } from './helpers/fixtures.js'

const README_LEAD = {
  client_id: 1,
  channel: 'web',
  status: 'new',
  admin_notes: 'Cliente interesado en servicios',
  sales_notes: 'Llamar el lunes',
}

const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
type Status = (typeof STATUSES)[number]

// The transition table of API.md, written out independently of the code under test.
const ALLOWED: Record<Status, Status[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: [],
  discarded: [],
}

describe('leads', () => {
  let ctx: TestContext
  let sales: TestUser
  let otherSales: TestUser
  let management: TestUser
  let clientId: number
  let otherClientId: number

  const newLead = (token: string, body: Record<string, unknown> = {}) =>
    createLead<{
      id: number
      status: string
      status_changed_at: string
      updated_at: string
      assigned_to: number | null
    }>(ctx, { client_id: clientId, channel: 'whatsapp', ...body }, token)
  /** Puts a lead straight into a status, as a fixture. */
  const forceStatus = (id: number, status: Status) =>
    ctx.db.updateTable('leads').set({ status }).where('id', '=', id).execute()

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    otherSales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      client_type: 'natural',
      contact_name: 'Juan Pérez',
      phone: '+584123456789',
    })
    clientId = client.json().id
    const other = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      client_type: 'juridical',
      contact_name: 'Ana Rojas',
      company_name: 'Inversiones Rojas C.A.',
      phone: '+584241112233',
    })
    otherClientId = other.json().id
  })
  after(() => ctx?.close())

  it("creates the README's lead as written: 201, the client inline, one audit row", async () => {
    assert.equal(clientId, 1)
    const response = await ctx.inject({
      method: 'POST',
      url: '/leads',
      headers: { authorization: `Bearer ${management.token}`, 'content-type': 'application/json' },
      payload: JSON.stringify(README_LEAD),
    })
    assert.equal(response.statusCode, 201, response.body)
    const lead = response.json()
    assert.equal(response.headers.location, `/leads/${lead.id}`)
    assert.equal(lead.status, 'new')
    assert.equal(lead.assigned_to, null)
    assert.equal(lead.created_by, management.id)
    assert.deepEqual(lead.client, { id: 1, contact_name: 'Juan Pérez', company_name: null, phone: '+584123456789' })
    assert.equal(lead.status_changed_at, lead.created_at)
    const rows = await ctx.auditRows('leads', lead.id)
    assert.equal(rows.length, 1)
    assert.equal(rows[0]?.action, 'create')
    assert.equal(rows[0]?.new_values?.admin_notes, 'Cliente interesado en servicios')
    assert.equal(rows[0]?.new_values?.search_vector, undefined)
  })

  it('refuses a client_id that does not exist, and an inactive or unknown assignee, with 400 naming the field', async () => {
    const before = await ctx.db.selectFrom('leads').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()
    const noClient = await ctx.as(management.token, 'POST', '/leads', { ...README_LEAD, client_id: 999999 })
    assert.equal(noClient.statusCode, 400)
    assert.deepEqual(
      problemOf(noClient).errors?.map((error) => error.field),
      ['client_id'],
    )
    const inactive = await ctx.createUser('sales', { is_active: false })
    for (const assignee of [inactive.id, 999999]) {
      const response = await ctx.as(management.token, 'POST', '/leads', { ...README_LEAD, assigned_to: assignee })
      assert.equal(response.statusCode, 400)
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        ['assigned_to'],
      )
    }
    const bad = await ctx.as(management.token, 'POST', '/leads', { client_id: 0, channel: 'fax', status: 'won' })
    assert.equal(bad.statusCode, 400)
    assert.deepEqual(
      problemOf(bad)
        .errors?.map((error) => error.field)
        .sort(),
      ['channel', 'client_id', 'status'],
    )
    const after = await ctx.db.selectFrom('leads').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()
    assert.equal(Number(after.n), Number(before.n))
  })

  it('keeps sales to their own leads: lists, reads, stats, the client and history', async () => {
    const mine = await newLead(sales.token, { sales_notes: 'mine' })
    assert.equal(mine.assigned_to, sales.id, 'a lead sales create is assigned to them')
    const theirs = await newLead(otherSales.token)
    const unassigned = await newLead(management.token)

    const list = (await ctx.as(sales.token, 'GET', '/leads?limit=200')).json()
    assert.deepEqual(
      list.items.map((lead: { id: number }) => lead.id),
      [mine.id],
    )
    assert.equal(list.total, 1)
    for (const id of [theirs.id, unassigned.id]) {
      for (const [method, url, body] of [
        ['GET', `/leads/${id}`, undefined],
        ['PATCH', `/leads/${id}`, { sales_notes: 'x' }],
        ['PATCH', `/leads/${id}/status`, { status: 'contacted' }],
        ['GET', `/leads/${id}/history`, undefined],
      ] as const) {
        const response = await ctx.as(sales.token, method, url, body)
        assert.equal(response.statusCode, 404, `${method} ${url}`)
      }
    }
    const stats = (await ctx.as(sales.token, 'GET', '/leads/stats')).json()
    assert.equal(stats.total, 1)
    assert.deepEqual(withoutResponseTimes(stats.by_assignee), [
      // No full_name set: null, and the username stays.
      { user_id: sales.id, username: sales.username, full_name: null, total: 1, closed: 0 },
    ])
    const client = (await ctx.as(sales.token, 'GET', `/clients/${clientId}`)).json()
    assert.deepEqual(
      client.leads.map((lead: { id: number }) => lead.id),
      [mine.id],
    )
    const everyone = (await ctx.as(management.token, 'GET', `/clients/${clientId}`)).json()
    assert.ok(everyone.leads.length >= 3)
    const searched = (await ctx.as(sales.token, 'GET', '/leads?q=perez')).json()
    assert.deepEqual(
      searched.items.map((lead: { id: number }) => lead.id),
      [mine.id],
    )
    const history = await ctx.as(sales.token, 'GET', `/leads/${mine.id}/history`)
    assert.equal(history.statusCode, 200)
    assert.equal(history.json().items[0].action, 'create')
  })

  it('refuses sales what is not theirs to do: assign (403), admin_notes (403), leads for others (403)', async () => {
    const lead = await newLead(sales.token)
    const assign = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: otherSales.id })
    assert.equal(assign.statusCode, 403)
    const notes = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}`, { admin_notes: 'I am admin now' })
    assert.equal(notes.statusCode, 403)
    const createWithNotes = await ctx.as(sales.token, 'POST', '/leads', {
      client_id: clientId,
      channel: 'web',
      admin_notes: 'x',
    })
    assert.equal(createWithNotes.statusCode, 403)
    for (const assignee of [otherSales.id, null]) {
      const response = await ctx.as(sales.token, 'POST', '/leads', {
        client_id: clientId,
        channel: 'web',
        assigned_to: assignee,
      })
      assert.equal(response.statusCode, 403, String(assignee))
    }
    const own = await ctx.as(sales.token, 'POST', '/leads', {
      client_id: clientId,
      channel: 'web',
      assigned_to: sales.id,
    })
    assert.equal(own.statusCode, 201)
    const remove = await ctx.as(sales.token, 'DELETE', `/leads/${lead.id}`)
    assert.equal(remove.statusCode, 403)
    const after = (await ctx.as(sales.token, 'GET', `/leads/${lead.id}`)).json()
    assert.equal(after.admin_notes, null)
    assert.equal(after.assigned_to, sales.id)
    assert.equal((await ctx.auditRows('leads', lead.id)).length, 1)
  })

  it('allows exactly the transitions of the table, and reopening by management only', async () => {
    for (const from of STATUSES) {
      for (const to of STATUSES) {
        if (from === to) continue
        for (const user of [sales, management]) {
          const lead = await newLead(sales.token)
          await forceStatus(lead.id, from)
          const response = await ctx.as(user.token, 'PATCH', `/leads/${lead.id}/status`, {
            status: to,
            ...(to === 'discarded' && { lost_reason: 'price' }),
          })
          const reopen = (from === 'closed' || from === 'discarded') && to === 'contacted' && user.role !== 'sales'
          const allowed = ALLOWED[from].includes(to) || reopen
          const label = `${from} → ${to} as ${user.role}`
          if (allowed) {
            assert.equal(response.statusCode, 200, `${label}: ${response.body}`)
            assert.equal(response.json().status, to)
            assert.ok(response.json().status_changed_at > lead.status_changed_at, label)
            const rows = await ctx.auditRows('leads', lead.id)
            const reason = to === 'discarded' ? { lost_reason: 'price' } : {}
            assert.deepEqual(
              rows.at(-1)?.old_values,
              { status: from, ...(to === 'discarded' && { lost_reason: null }) },
              label,
            )
            assert.deepEqual(rows.at(-1)?.new_values, { status: to, ...reason }, label)
          } else {
            assert.equal(response.statusCode, 409, label)
            const problem = problemOf(response)
            assert.equal(problem.code, 'invalid_transition', label)
            const expected = [
              ...ALLOWED[from],
              ...((from === 'closed' || from === 'discarded') && user.role !== 'sales' ? ['contacted'] : []),
            ]
            assert.deepEqual(problem.allowed, expected, label)
            assert.equal((await ctx.auditRows('leads', lead.id)).length, 1, label)
          }
        }
      }
    }
  })

  it('treats setting the current status again as a no-op: no audit row, nothing moves', async () => {
    const lead = await newLead(sales.token)
    const again = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'new' })
    assert.equal(again.statusCode, 200)
    assert.equal(again.json().updated_at, lead.updated_at)
    assert.equal(again.json().status_changed_at, lead.status_changed_at)
    await forceStatus(lead.id, 'closed')
    const closedAgain = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'closed' })
    assert.equal(closedAgain.statusCode, 200)
    assert.equal((await ctx.auditRows('leads', lead.id)).length, 1)
  })

  it('assigns to active users only, and unassigns', async () => {
    const lead = await newLead(management.token)
    const assigned = await ctx.as(management.token, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: otherSales.id })
    assert.equal(assigned.statusCode, 200)
    assert.equal(assigned.json().assigned_to, otherSales.id)
    assert.equal((await ctx.as(otherSales.token, 'GET', `/leads/${lead.id}`)).statusCode, 200)
    const inactive = await ctx.createUser('sales', { is_active: false })
    for (const assignee of [inactive.id, 999999]) {
      const response = await ctx.as(management.token, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: assignee })
      assert.equal(response.statusCode, 400)
      assert.equal(problemOf(response).errors?.[0]?.field, 'assigned_to')
    }
    const unassigned = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: null })
    assert.equal(unassigned.statusCode, 200)
    assert.equal(unassigned.json().assigned_to, null)
    const rows = await ctx.auditRows('leads', lead.id)
    assert.deepEqual(
      rows.slice(1).map((row) => [row.old_values, row.new_values]),
      [
        [{ assigned_to: null }, { assigned_to: otherSales.id }],
        [{ assigned_to: otherSales.id }, { assigned_to: null }],
      ],
    )
    assert.equal((await ctx.as(otherSales.token, 'GET', `/leads/${lead.id}`)).statusCode, 404)
  })

  it('points PATCH /leads/{id} with status or assigned_to to their own routes', async () => {
    const lead = await newLead(management.token)
    const response = await ctx.as(management.token, 'PATCH', `/leads/${lead.id}`, {
      status: 'closed',
      sales_notes: 'x',
    })
    assert.equal(response.statusCode, 400)
    const errors = problemOf(response).errors ?? []
    assert.equal(errors[0]?.field, 'status')
    assert.match(errors[0]?.message ?? '', new RegExp(`/leads/${lead.id}/status`))
    const assign = await ctx.as(management.token, 'PATCH', `/leads/${lead.id}`, { assigned_to: sales.id })
    assert.match(problemOf(assign).errors?.[0]?.message ?? '', /\/assign/)
    assert.equal((await ctx.auditRows('leads', lead.id)).length, 1)
  })

  it('updates the changed fields only, with one audit row; a no-op writes nothing', async () => {
    const lead = await newLead(sales.token, { sales_notes: 'first' })
    const patch = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}`, {
      sales_notes: 'second',
      channel: 'whatsapp',
      client_id: otherClientId,
    })
    assert.equal(patch.statusCode, 200)
    assert.equal(patch.json().client.company_name, 'Inversiones Rojas C.A.')
    const rows = await ctx.auditRows('leads', lead.id)
    assert.equal(rows.length, 2)
    assert.deepEqual(rows[1]?.old_values, { sales_notes: 'first', client_id: clientId })
    assert.deepEqual(rows[1]?.new_values, { sales_notes: 'second', client_id: otherClientId })
    const noop = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}`, { sales_notes: 'second' })
    assert.equal(noop.json().updated_at, patch.json().updated_at)
    assert.equal((await ctx.auditRows('leads', lead.id)).length, 2)
    const missing = await ctx.as(sales.token, 'PATCH', `/leads/${lead.id}`, { client_id: 999999 })
    assert.equal(missing.statusCode, 400)
    assert.equal(problemOf(missing).errors?.[0]?.field, 'client_id')
  })

  it('leaves neither change nor audit row when a status change fails half-way', async () => {
    const lead = await newLead(sales.token)
    await sql`create function refuse_lead_audit() returns trigger language plpgsql as $$
      begin if new.table_name = 'leads' then raise exception 'audit refused'; end if; return new; end $$`.execute(
      ctx.db,
    )
    await sql`create trigger refuse_lead_audit before insert on audit_logs for each row execute function refuse_lead_audit()`.execute(
      ctx.db,
    )
    try {
      const response = await ctx.injectUnchecked('a 500, which no operation documents, is forced here', {
        method: 'PATCH',
        url: `/leads/${lead.id}/status`,
        headers: { authorization: `Bearer ${sales.token}` },
        payload: { status: 'contacted' },
      })
      assert.equal(response.statusCode, 500)
      assert.doesNotMatch(response.body, /audit refused/)
    } finally {
      await sql`drop trigger refuse_lead_audit on audit_logs`.execute(ctx.db)
      await sql`drop function refuse_lead_audit()`.execute(ctx.db)
    }
    const after = (await ctx.as(sales.token, 'GET', `/leads/${lead.id}`)).json()
    assert.equal(after.status, 'new')
    assert.equal(after.updated_at, lead.updated_at)
    assert.equal((await ctx.auditRows('leads', lead.id)).length, 1)
  })

  it('filters and sorts the list, and refuses what is not whitelisted', async () => {
    const leads = await ctx.db.selectFrom('leads').select(['id', 'status', 'channel', 'assigned_to']).execute()
    const get = async (query: string) => {
      const response = await ctx.as(management.token, 'GET', `/leads?limit=200&${query}`)
      assert.equal(response.statusCode, 200, `${query}: ${response.body}`)
      return response.json() as { items: Array<{ id: number; created_at: string }>; total: number }
    }
    const ids = (rows: Array<{ id: number }>) => rows.map((row) => row.id).sort((a, b) => a - b)
    const twoStatuses = await get('status=new&status=contacted')
    assert.deepEqual(ids(twoStatuses.items), ids(leads.filter((lead) => ['new', 'contacted'].includes(lead.status))))
    assert.equal(twoStatuses.total, twoStatuses.items.length)
    const web = await get('channel=web')
    assert.deepEqual(ids(web.items), ids(leads.filter((lead) => lead.channel === 'web')))
    const none = await get('assigned_to=none')
    assert.deepEqual(ids(none.items), ids(leads.filter((lead) => lead.assigned_to === null)))
    const byId = await get(`assigned_to=${sales.id}`)
    assert.deepEqual(ids(byId.items), ids(leads.filter((lead) => lead.assigned_to === sales.id)))
    const me = (await ctx.as(sales.token, 'GET', '/leads?assigned_to=me&limit=200')).json()
    assert.deepEqual(ids(me.items), ids(byId.items))
    const ofClient = await get(`client_id=${otherClientId}`)
    assert.ok(ofClient.items.length >= 1)
    const byNotes = await get('q=LLAMAR el lunes')
    assert.ok(byNotes.items.length >= 1)
    const newest = await get('sort=-created_at')
    const times = newest.items.map((lead) => lead.created_at)
    assert.deepEqual(times, [...times].sort().reverse())
    assert.equal((await get('created_to=2000-01-01')).total, 0)
    for (const query of [
      'sort=status',
      'limit=201',
      'status=new&status=won',
      'assigned_to=someone',
      'channel=fax',
      'colour=red',
    ]) {
      const response = await ctx.as(management.token, 'GET', `/leads?${query}`)
      assert.equal(response.statusCode, 400, query)
      assert.equal(problemOf(response).errors?.[0]?.field, query.split('=')[0])
    }
  })

  it('trashes a lead with one audit row; a client with leads only with cascade, which trashes them too', async () => {
    const client = (
      await ctx.as(management.token, 'POST', '/clients', { contact_name: 'Cascada', phone: '+584149990001' })
    ).json()
    const first = await newLead(management.token, { client_id: client.id })
    const second = await newLead(management.token, { client_id: client.id })
    const third = await newLead(management.token, { client_id: client.id })
    const removed = await ctx.as(management.token, 'DELETE', `/leads/${third.id}`)
    assert.equal(removed.statusCode, 204)
    assert.deepEqual(
      (await ctx.auditRows('leads', third.id)).map((row) => row.action),
      ['create', 'delete'],
    )
    const refused = await ctx.as(management.token, 'DELETE', `/clients/${client.id}`)
    assert.equal(refused.statusCode, 409)
    assert.equal(problemOf(refused).code, 'client_has_leads')
    assert.equal(problemOf(refused).lead_count, 2)
    const cascaded = await ctx.as(management.token, 'DELETE', `/clients/${client.id}?cascade=true`)
    assert.equal(cascaded.statusCode, 204)
    for (const lead of [first, second]) {
      const rows = await ctx.auditRows('leads', lead.id)
      assert.deepEqual(
        rows.map((row) => row.action),
        ['create', 'delete'],
      )
      assert.equal(rows[1]?.request_id, cascaded.headers['x-request-id'])
    }
    assert.deepEqual(
      (await ctx.auditRows('clients', client.id)).map((row) => row.action),
      ['create', 'delete'],
    )
    const left = await ctx.db
      .selectFrom('leads')
      .select('id')
      .where('client_id', '=', client.id)
      .where('deleted_at', 'is', null)
      .execute()
    assert.equal(left.length, 0)
  })

  it('unassigns the leads of a deleted user, one audit row each', async () => {
    const leaving = await ctx.createUser('sales')
    const one = await newLead(leaving.token)
    const two = await newLead(leaving.token)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/users/${leaving.id}`)).statusCode, 204)
    for (const lead of [one, two]) {
      const after = (await ctx.as(management.token, 'GET', `/leads/${lead.id}`)).json()
      assert.equal(after.assigned_to, null)
      const rows = await ctx.auditRows('leads', lead.id)
      assert.deepEqual(rows.at(-1)?.new_values, { assigned_to: null })
    }
  })
})

describe('lead stats', () => {
  let ctx: TestContext
  let sales: TestUser

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales', { full_name: 'Sofía Ventas' })
    const client = (
      await ctx.as(ctx.adminToken, 'POST', '/clients', { contact_name: 'Estadística', phone: '+584121230000' })
    ).json()
    // A known data set: ten leads over four days, four of them closed.
    const fixtures: Array<[string, string, string, number | null, string | null]> = [
      ['2026-03-01T10:00:00Z', 'web', 'closed', sales.id, '2026-03-03T09:00:00Z'],
      ['2026-03-01T23:59:59Z', 'web', 'new', sales.id, null],
      ['2026-03-01T12:00:00Z', 'whatsapp', 'contacted', sales.id, null],
      ['2026-03-02T00:00:00Z', 'whatsapp', 'closed', null, '2026-03-02T18:00:00Z'],
      ['2026-03-02T08:00:00Z', 'instagram', 'quoted', null, null],
      ['2026-03-04T08:00:00Z', 'instagram', 'discarded', sales.id, null],
      ['2026-03-04T09:00:00Z', 'web', 'closed', sales.id, '2026-03-04T10:00:00Z'],
      ['2026-03-04T10:00:00Z', 'web', 'closed', null, '2026-03-04T12:00:00Z'],
      ['2026-03-04T11:00:00Z', 'web', 'new', null, null],
      ['2026-03-04T12:00:00Z', 'web', 'contacted', sales.id, null],
    ]
    await ctx.db
      .insertInto('leads')
      .values(
        fixtures.map(([createdAt, channel, status, assignedTo, changedAt]) => ({
          client_id: client.id,
          channel: channel as 'web',
          status: status as 'new',
          assigned_to: assignedTo,
          created_at: createdAt,
          updated_at: createdAt,
          status_changed_at: changedAt ?? createdAt,
        })),
      )
      .execute()
  })
  after(() => ctx?.close())

  const stats = async (query = '', token = ctx.adminToken) => {
    const response = await ctx.as(token, 'GET', `/leads/stats${query}`)
    assert.equal(response.statusCode, 200, response.body)
    return response.json()
  }

  it('counts every status and channel, zeros included, and the conversion rate', async () => {
    const body = await stats('?created_from=2026-03-01&created_to=2026-03-05')
    assert.equal(body.total, 10)
    assert.deepEqual(body.by_status, { new: 2, contacted: 2, quoted: 1, closed: 4, discarded: 1 })
    assert.deepEqual(body.by_channel, { web: 6, whatsapp: 2, instagram: 2, manual: 0 })
    assert.equal(body.conversion_rate, 0.4)
    // None answered yet: no response figures, and the open ones (3 of the seller's, 2 unassigned) waiting.
    const unanswered = (waiting: number) => ({
      median_seconds: null,
      p90_seconds: null,
      within_target_ratio: null,
      waiting,
    })
    assert.deepEqual(body.by_assignee, [
      {
        user_id: sales.id,
        username: sales.username,
        full_name: 'Sofía Ventas',
        total: 6,
        closed: 2,
        response_time: unanswered(3),
      },
      { user_id: null, username: null, full_name: null, total: 4, closed: 2, response_time: unanswered(2) },
    ])
  })

  it('lists every UTC day of the range, empty days included', async () => {
    const body = await stats('?created_from=2026-03-01&created_to=2026-03-05')
    assert.deepEqual(body.per_day, [
      { date: '2026-03-01', created: 3, closed: 0 },
      { date: '2026-03-02', created: 2, closed: 1 },
      { date: '2026-03-03', created: 0, closed: 1 },
      { date: '2026-03-04', created: 5, closed: 2 },
      { date: '2026-03-05', created: 0, closed: 0 },
    ])
  })

  it('takes the same filters as the list, and is scoped for sales', async () => {
    const web = await stats('?channel=web&status=closed&status=new&created_from=2026-03-01&created_to=2026-03-31')
    assert.equal(web.total, 5)
    assert.deepEqual(web.by_status, { new: 2, contacted: 0, quoted: 0, closed: 3, discarded: 0 })
    assert.equal(web.conversion_rate, 0.6)
    assert.equal(web.per_day.length, 31)
    const unassigned = await stats('?assigned_to=none')
    assert.equal(unassigned.total, 4)
    const mine = await stats('', sales.token)
    assert.equal(mine.total, 6)
    assert.deepEqual(withoutResponseTimes(mine.by_assignee), [
      { user_id: sales.id, username: sales.username, full_name: 'Sofía Ventas', total: 6, closed: 2 },
    ])
    const empty = await stats('?created_from=2020-01-01&created_to=2020-01-02')
    assert.equal(empty.total, 0)
    assert.equal(empty.conversion_rate, 0)
    assert.deepEqual(empty.by_status, { new: 0, contacted: 0, quoted: 0, closed: 0, discarded: 0 })
    assert.deepEqual(empty.by_assignee, [])
    assert.equal(empty.per_day.length, 2)
    const bad = await ctx.as(ctx.adminToken, 'GET', '/leads/stats?created_from=2026-03-05&created_to=2026-03-01')
    assert.equal(bad.statusCode, 400)
    assert.equal(problemOf(bad).errors?.[0]?.field, 'created_to')
  })
})

/** by_assignee entries without their response times (tests/response-stats.test.ts checks those). */
function withoutResponseTimes(entries: Array<Record<string, unknown>>) {
  return entries.map(({ response_time: _responseTime, ...entry }) => entry)
}
