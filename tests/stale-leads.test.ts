import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { publishStaleLeads } from '../src/leads/stale.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

type Lead = { id: number; status: string; stale: boolean; last_activity_at: string | null }

describe('stale leads', () => {
  let ctx: TestContext
  let sales: TestUser
  let other: TestUser
  let mine: Lead
  let theirs: Lead

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    other = await ctx.createUser('sales')
    const client = await createClient(ctx)
    mine = await createLead<Lead>(ctx, { client_id: client.id }, sales.token)
    theirs = await createLead<Lead>(ctx, { client_id: client.id }, other.token)
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
      stale_after: { new: 'PT1H', contacted: 'P3D', quoted: null },
    })
    assert.equal(put.statusCode, 200, put.body)
  })
  after(() => ctx.close())

  /** Moves a lead's stay back by `hours`, as if that much time had passed. */
  const age = (id: number, hours: number) =>
    ctx.db
      .updateTable('leads')
      .set({
        status_changed_at: sql`status_changed_at - make_interval(hours => ${hours})`,
        last_activity_at: sql`last_activity_at - make_interval(hours => ${hours})`,
      })
      .where('id', '=', id)
      .execute()
  const ids = async (token: string, query: string) => {
    const response = await ctx.as(token, 'GET', `/leads?${query}`)
    assert.equal(response.statusCode, 200, response.body)
    return (response.json() as { items: Lead[] }).items.map((lead) => lead.id).sort((a, b) => a - b)
  }
  const staleEvents = (id: number) =>
    ctx.db
      .selectFrom('events')
      .select(['type', 'actor', 'data'])
      .where('type', '=', 'lead.stale')
      .where('resource_key', '=', `lead:${id}`)
      .orderBy('id')
      .execute()
  const read = async (id: number) => (await ctx.as(ctx.adminToken, 'GET', `/leads/${id}`)).json() as Lead

  it('is fresh until its stay passes stale_after of its status', async () => {
    assert.equal(mine.stale, false)
    assert.equal(mine.last_activity_at, null)
    assert.deepEqual(await ids(ctx.adminToken, 'stale=true'), [])
    assert.deepEqual(await ids(ctx.adminToken, 'stale=false'), [mine.id, theirs.id])
    await age(mine.id, 2)
    await age(theirs.id, 2)
    assert.equal((await read(mine.id)).stale, true)
    assert.deepEqual(await ids(ctx.adminToken, 'stale=true'), [mine.id, theirs.id])
    assert.deepEqual(await ids(ctx.adminToken, 'stale=false'), [])
    const stats = await ctx.as(ctx.adminToken, 'GET', '/leads/stats?stale=true')
    assert.equal(stats.json().total, 2)
  })

  it('is listed to sales only among their own leads', async () => {
    assert.deepEqual(await ids(sales.token, 'stale=true'), [mine.id])
    assert.deepEqual(await ids(other.token, 'stale=true'), [theirs.id])
    assert.deepEqual(await ids(sales.token, 'stale=false'), [])
  })

  it('publishes one lead.stale a stay, however often the run comes', async () => {
    await publishStaleLeads(ctx.db)
    await publishStaleLeads(ctx.db)
    const events = await staleEvents(mine.id)
    assert.equal(events.length, 1)
    const event = events[0] as unknown as { actor: unknown; data: { old: unknown; new: unknown; object: Lead } }
    assert.deepEqual(event.actor, { type: 'system', id: null, name: 'system' })
    assert.deepEqual([event.data.old, event.data.new], [{ stale: false }, { stale: true }])
    assert.equal(event.data.object.id, mine.id)
    assert.equal(event.data.object.stale, true)
    assert.equal((await staleEvents(theirs.id)).length, 1)
    assert.equal(await publishStaleLeads(ctx.db), 0)
  })

  it('an activity ends the stay; a later stay publishes again', async () => {
    const note = await ctx.as(sales.token, 'POST', `/leads/${mine.id}/activities`, { type: 'note', body: 'Llamar' })
    assert.equal(note.statusCode, 201, note.body)
    const fresh = await read(mine.id)
    assert.equal(fresh.stale, false)
    assert.equal(fresh.last_activity_at, note.json().occurred_at)
    assert.deepEqual(await ids(ctx.adminToken, 'stale=true'), [theirs.id])
    await publishStaleLeads(ctx.db)
    assert.equal((await staleEvents(mine.id)).length, 1)

    await age(mine.id, 2)
    assert.deepEqual(await ids(ctx.adminToken, 'stale=true'), [mine.id, theirs.id])
    // Two instances at once: one of them publishes it.
    await Promise.all([publishStaleLeads(ctx.db), publishStaleLeads(ctx.db)])
    assert.equal((await staleEvents(mine.id)).length, 2)
    assert.equal((await staleEvents(theirs.id)).length, 1)
  })

  it('an assignment is no activity; a status without stale_after, or a closed one, is never stale', async () => {
    const assigned = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${theirs.id}/assign`, { assigned_to: sales.id })
    assert.equal(assigned.statusCode, 200, assigned.body)
    assert.equal(assigned.json().stale, true)

    const moved = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${theirs.id}/status`, { status: 'contacted' })
    assert.equal(moved.statusCode, 200, moved.body)
    assert.equal(moved.json().stale, false)
    await age(theirs.id, 24 * 4)
    assert.equal((await read(theirs.id)).stale, true)
    await publishStaleLeads(ctx.db)
    assert.equal((await staleEvents(theirs.id)).length, 2)

    for (const status of ['quoted', 'closed']) {
      const changed = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${theirs.id}/status`, { status })
      assert.equal(changed.statusCode, 200, changed.body)
      await age(theirs.id, 24 * 365)
      assert.equal((await read(theirs.id)).stale, false)
    }
    assert.deepEqual(await ids(ctx.adminToken, 'stale=true'), [mine.id])
  })

  it('takes only durations that PostgreSQL reads alike', async () => {
    for (const duration of ['P1DT-1H', 'PT-1H', 'P1,5D']) {
      const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
        stale_after: { new: duration, contacted: null, quoted: null },
      })
      assert.equal(put.statusCode, 400, duration)
      assert.equal(problemOf(put).errors?.[0]?.field, 'stale_after.new')
    }
    assert.equal((await ids(ctx.adminToken, 'stale=true')).length, 1)
  })

  it('counts an activity logged ahead as happening now', async () => {
    const later = new Date(Date.now() + 7 * 86_400_000).toISOString()
    const meeting = await ctx.as(sales.token, 'POST', `/leads/${mine.id}/activities`, {
      type: 'meeting',
      body: 'Visita',
      occurred_at: later,
    })
    assert.equal(meeting.statusCode, 201, meeting.body)
    const lead = await read(mine.id)
    assert.ok(new Date(lead.last_activity_at as string).getTime() <= Date.now())
    assert.equal(lead.stale, false)
  })

  it('publishes every stale lead, batch after batch, once', async () => {
    const client = await createClient(ctx)
    const created = await ctx.db
      .insertInto('leads')
      .values(
        Array.from({ length: 230 }, () => ({
          client_id: client.id,
          channel: 'web' as const,
          assigned_to: other.id,
          status_changed_at: sql<Date>`now() - interval '3 hours'`,
        })),
      )
      .returning('id')
      .execute()
    const published = await publishStaleLeads(ctx.db)
    assert.equal(published, 230)
    const events = await ctx.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('type', '=', 'lead.stale')
      .where(
        'resource_key',
        'in',
        created.map((lead) => `lead:${lead.id}`),
      )
      .executeTakeFirstOrThrow()
    assert.equal(Number(events.count), 230)
    assert.equal(await publishStaleLeads(ctx.db), 0)
  })
})
