import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import type { LeadFilter } from '../src/leads/queries.js'
import { countersAnswer, leadStats, statsFromCounters, statsFromScan } from '../src/leads/stats.js'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'

const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual'] as const
const NEXT: Record<string, string[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: ['contacted'],
  discarded: ['contacted'],
}

/** A small seeded generator, so that a failing stream can be replayed from the seed it prints. */
function random(seed: number) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { next, pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T }
}

describe('lead counters', () => {
  let ctx: TestContext
  let sellers: TestUser[]
  let clientIds: number[]
  const seed = Number(process.env.LEAD_COUNTS_SEED ?? Date.now() % 1_000_000)

  before(async () => {
    ctx = await startTestContext()
    sellers = [await ctx.createUser('sales'), await ctx.createUser('sales'), await ctx.createUser('sales')]
    clientIds = []
    for (const phone of ['+584141000011', '+584141000012', '+584141000013']) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/clients', { contact_name: 'Cliente', phone })
      clientIds.push(response.json().id)
    }
  })
  after(() => ctx?.close())

  const leadIds = async () =>
    (await ctx.db.selectFrom('leads').select(['id', 'status']).orderBy('id').execute()).map((lead) => lead)

  /** One random change through the API (or, for dates, straight in SQL, as an import would). */
  async function randomChange(rng: ReturnType<typeof random>, leads: Array<{ id: number; status: string }>) {
    const roll = rng.next()
    const lead = leads.length > 0 ? rng.pick(leads) : undefined
    if (roll < 0.35 || !lead) {
      const assignee = rng.pick([null, ...sellers.map((seller) => seller.id)])
      const status = rng.pick(STATUSES)
      return ctx.as(ctx.adminToken, 'POST', '/leads', {
        client_id: rng.pick(clientIds),
        channel: rng.pick(CHANNELS),
        status,
        assigned_to: assignee,
        ...(status === 'discarded' && { lost_reason: 'price' }),
      })
    }
    if (roll < 0.6) {
      const status = rng.pick(NEXT[lead.status] ?? [])
      return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
        status,
        ...(status === 'discarded' && { lost_reason: 'price' }),
      })
    }
    if (roll < 0.72) {
      const assignee = rng.pick([null, ...sellers.map((seller) => seller.id)])
      return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: assignee })
    }
    if (roll < 0.8) return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { channel: rng.pick(CHANNELS) })
    if (roll < 0.83) return ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id}`)
    if (roll < 0.86) {
      // Restoring a lead that is not in the trash is a 404: the stream goes on.
      const trashed = await ctx.db.selectFrom('leads').select('id').where('deleted_at', 'is not', null).execute()
      const restored = trashed.length > 0 ? rng.pick(trashed) : lead
      return ctx.as(ctx.adminToken, 'POST', `/leads/${restored.id}/restore`)
    }
    if (roll < 0.94) {
      // Spread leads over past days (creation and closing), as imported or old data would be.
      const days = Math.floor(rng.next() * 40)
      const later = Math.floor(rng.next() * 5)
      await sql`update leads set created_at = now() - make_interval(days => ${days}),
        status_changed_at = now() - make_interval(days => ${Math.max(0, days - later)}) where id = ${lead.id}`.execute(
        ctx.db,
      )
      return { statusCode: 200 }
    }
    // Many leads in one statement: every lead of one seller moves to another.
    const [from, to] = [rng.pick(sellers), rng.pick(sellers)]
    await ctx.db.updateTable('leads').set({ assigned_to: to.id }).where('assigned_to', '=', from.id).execute()
    return { statusCode: 200 }
  }

  it(`match a full recount after a random stream of changes, concurrent ones included (seed ${seed})`, async () => {
    const rng = random(seed)
    for (let round = 0; round < 25; round += 1) {
      const leads = await leadIds()
      // Several changes at once, some on the same lead and the same counters.
      const responses = await Promise.all(Array.from({ length: 6 }, () => randomChange(rng, leads)))
      for (const response of responses) {
        assert.ok(response.statusCode < 500, `a change failed with ${response.statusCode}`)
      }
    }
    // Clients trashed with their leads, one restored with them, one merged into another, one purged,
    // and a seller deleted (their leads unassigned): paths outside the lead routes.
    const [first, second, third] = clientIds as [number, number, number]
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/clients/${third}?cascade=true`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/clients/${second}?cascade=true`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/clients/${second}/restore`)).statusCode, 200)
    const merged = await ctx.as(ctx.adminToken, 'POST', `/clients/${first}/merge`, { from_id: second })
    assert.equal(merged.statusCode, 200, merged.body)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/clients/${third}`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/users/${sellers[2]?.id}`)).statusCode, 204)

    const leadCount = Number(
      (
        await ctx.db
          .selectFrom('leads')
          .select(sql<number>`count(*)`.as('n'))
          .where('deleted_at', 'is', null)
          .executeTakeFirstOrThrow()
      ).n,
    )
    assert.ok(leadCount > 20, `the stream left ${leadCount} leads`)

    // The counters tables against a recount of the leads table, row by row.
    const differences = await sql<Record<string, unknown>>`
      with kept as (
        select day, status, channel, assigned_to, sum(leads)::int as n from lead_counts
        group by 1, 2, 3, 4 having sum(leads) <> 0
      ), recount as (
        select utc_day(created_at) as day, status, channel, assigned_to, count(*)::int as n from leads
        where deleted_at is null group by 1, 2, 3, 4
      )
      (select 'kept' as side, * from kept except select 'kept', * from recount)
      union all
      (select 'recount', * from recount except select 'recount', * from kept)`.execute(ctx.db)
    assert.deepEqual(differences.rows, [])
    const closedDifferences = await sql<Record<string, unknown>>`
      with kept as (
        select day, closed_day, channel, assigned_to, sum(leads)::int as n from lead_closed_counts
        group by 1, 2, 3, 4 having sum(leads) <> 0
      ), recount as (
        select utc_day(created_at) as day, utc_day(status_changed_at) as closed_day, channel, assigned_to,
          count(*)::int as n
        from leads where status = 'closed' and deleted_at is null group by 1, 2, 3, 4
      ), kept_by_day as (
        select closed_day, channel, assigned_to, sum(leads)::int as n from lead_closed_day_counts
        group by 1, 2, 3 having sum(leads) <> 0
      ), recount_by_day as (
        select closed_day, channel, assigned_to, sum(n)::int as n from recount group by 1, 2, 3
      )
      (select day, closed_day, channel, assigned_to, n from kept except select * from recount)
      union all (select * from recount except select * from kept)
      union all (select null::date, * from kept_by_day except select null::date, * from recount_by_day)
      union all (select null::date, * from recount_by_day except select null::date, * from kept_by_day)`.execute(ctx.db)
    assert.deepEqual(closedDifferences.rows, [])
    const totalDifferences = await sql<Record<string, unknown>>`
      with kept as (
        select status, channel, assigned_to, sum(leads)::int as n from lead_totals
        group by 1, 2, 3 having sum(leads) <> 0
      ), recount as (
        select status, channel, assigned_to, count(*)::int as n from leads where deleted_at is null group by 1, 2, 3
      )
      (select 'kept' as side, * from kept except select 'kept', * from recount)
      union all
      (select 'recount', * from recount except select 'recount', * from kept)`.execute(ctx.db)
    assert.deepEqual(totalDifferences.rows, [])
    // The search text kept beside the clients: exactly the live ones, as they are now.
    const searchDifferences = await sql<Record<string, unknown>>`
      (select client_id, search_text from client_search
        except select id, search_text from clients where deleted_at is null)
      union all
      (select id, search_text from clients where deleted_at is null
        except select client_id, search_text from client_search)`.execute(ctx.db)
    assert.deepEqual(searchDifferences.rows, [])

    // And what /leads/stats answers from them against the scan, for the filters the counters serve.
    const admin: AuthenticatedActor = { userId: 1, username: 'admin', role: 'admin', requestId: null }
    const seller = sellers[0] as TestUser
    const salesActor: AuthenticatedActor = {
      userId: seller.id,
      username: seller.username,
      role: 'sales',
      requestId: null,
    }
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10)
    const filters: LeadFilter[] = [
      {},
      { status: ['closed'] },
      { status: ['new', 'contacted'] },
      { channel: ['web', 'manual'] },
      { assigned_to: ['none'] },
      { assigned_to: ['me'] },
      { assigned_to: [seller.id] },
      { assigned_to: [seller.id, 'none'] },
      { assigned_to: [seller.id, (sellers[1] as TestUser).id] },
      { created_from: day(30), created_to: day(3) },
      { created_from: day(10) },
      { created_to: day(5), status: ['closed', 'quoted'], channel: ['whatsapp'] },
      { created_from: `${day(20)}T00:00:00Z`, created_to: `${day(2)}T23:59:59.999Z` },
    ]
    for (const actor of [admin, salesActor]) {
      for (const filter of filters) {
        assert.ok(countersAnswer(filter), JSON.stringify(filter))
        const label = `${actor.role} ${JSON.stringify(filter)}`
        assert.deepEqual(
          await statsFromCounters(ctx.db, actor, filter),
          await statsFromScan(ctx.db, actor, filter),
          label,
        )
      }
    }
    const everything = await leadStats(ctx.db, admin, {})
    assert.equal(everything.total, leadCount)
  })

  it('leave to the scan the filters they cannot answer', async () => {
    assert.equal(countersAnswer({ q: 'juan' }), false)
    assert.equal(countersAnswer({ client_id: 1 }), false)
    assert.equal(countersAnswer({ created_from: '2026-11-01T12:00:00Z' }), false)
    assert.equal(countersAnswer({ created_to: '2026-11-01T12:00:00Z' }), false)
    assert.equal(countersAnswer({ status: ['new'], created_from: '2026-11-01' }), true)
    // A filter added later is answered by the scan until the counters learn it.
    assert.equal(countersAnswer({ updated_from: '2026-11-01' } as LeadFilter), false)
    const response = await ctx.as(ctx.adminToken, 'GET', `/leads/stats?client_id=${clientIds[0]}`)
    assert.equal(response.statusCode, 200)
    const own = await ctx.db
      .selectFrom('leads')
      .select(sql<number>`count(*)`.as('n'))
      .where('client_id', '=', clientIds[0] as number)
      .where('deleted_at', 'is', null)
      .executeTakeFirstOrThrow()
    assert.equal(response.json().total, Number(own.n))
  })
})
