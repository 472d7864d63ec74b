import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import type { LeadFilter } from '../src/leads/queries.js'
import {
  addCents,
  type CurrencyValue,
  divideCents,
  valueCountersAnswer,
  valueStatsFromCounters,
  valueStatsFromScan,
} from '../src/leads/value-stats.js'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
const OPEN = ['new', 'contacted', 'quoted'] as const
const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual'] as const
const CURRENCIES = ['USD', 'EUR', 'VES'] as const
const NEXT: Record<string, string[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: ['contacted'],
  discarded: ['contacted'],
}
/** In hundredths, so that the recount weighs amounts in integers. */
const PROBABILITY = { new: 5, contacted: 25, quoted: 65 }

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

const cents = (amount: string) => {
  const [whole = '0', fraction = ''] = amount.split('.')
  return BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0'))
}
const text = (value: bigint) => {
  const digits = value.toString().padStart(3, '0')
  return `${digits.slice(0, -2)}.${digits.slice(-2)}`
}

interface LeadRow {
  status: (typeof STATUSES)[number]
  channel: string
  assigned_to: number | null
  currency: string
  amount: string | null
  closed_month: string
}

/** The value block recounted here from the leads themselves, in integer cents. */
function recount(leads: LeadRow[]): CurrencyValue[] {
  const currencies = [...new Set(leads.map((lead) => lead.currency))].sort()
  return currencies.map((currency) => {
    const mine = leads.filter((lead) => lead.currency === currency)
    const sum = (rows: LeadRow[]) => ({
      amount: text(rows.reduce((total, lead) => total + (lead.amount ? cents(lead.amount) : 0n), 0n)),
      leads: rows.length,
    })
    const open = mine.filter((lead) => (OPEN as readonly string[]).includes(lead.status))
    const weighted = open.reduce(
      (total, lead) => total + (lead.amount ? cents(lead.amount) : 0n) * BigInt(PROBABILITY[lead.status as 'new']),
      0n,
    )
    const won = mine.filter((lead) => lead.status === 'closed')
    const lost = mine.filter((lead) => lead.status === 'discarded').length
    const priced = won.filter((lead) => lead.amount !== null)
    const wonCents = cents(sum(won).amount)
    const months = [...new Set(won.map((lead) => lead.closed_month))].sort()
    return {
      currency,
      open: {
        ...sum(open),
        by_status: Object.fromEntries(
          OPEN.map((status) => [status, sum(open.filter((lead) => lead.status === status))]),
        ) as CurrencyValue['open']['by_status'],
      },
      weighted_forecast: text((weighted + 50n) / 100n),
      won: {
        ...sum(won),
        by_month: months.map((month) => ({ month, ...sum(won.filter((lead) => lead.closed_month === month)) })),
      },
      average_won:
        priced.length === 0 ? null : text((wonCents * 2n + BigInt(priced.length)) / (BigInt(priced.length) * 2n)),
      win_rate: won.length + lost === 0 ? null : won.length / (won.length + lost),
    }
  })
}

describe('deal value stats', () => {
  let ctx: TestContext
  let sellers: TestUser[]
  let clientIds: number[]
  const seed = Number(process.env.LEAD_COUNTS_SEED ?? Date.now() % 1_000_000)

  before(async () => {
    ctx = await startTestContext()
    sellers = [await ctx.createUser('sales'), await ctx.createUser('sales')]
    clientIds = [(await createClient(ctx)).id, (await createClient(ctx)).id]
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
      stage_probability: { new: 0.05, contacted: 0.25, quoted: 0.65 },
    })
    assert.equal(put.statusCode, 200, put.body)
  })
  after(() => ctx?.close())

  it('answers per currency, never summing two of them', async () => {
    const client = (await createClient(ctx)).id
    const seller = sellers[1] as TestUser
    await createLead(ctx, { client_id: client, amount: '100.10', currency: 'USD', assigned_to: seller.id })
    await createLead(ctx, { client_id: client, amount: '50.05', currency: 'EUR', assigned_to: seller.id })
    await createLead(ctx, {
      client_id: client,
      amount: '1000',
      currency: 'EUR',
      status: 'closed',
      assigned_to: seller.id,
    })
    const response = await ctx.as(seller.token, 'GET', `/leads/stats?client_id=${client}`)
    assert.equal(response.statusCode, 200, response.body)
    const value = response.json().value.by_currency as CurrencyValue[]
    assert.deepEqual(
      value.map((entry) => [entry.currency, entry.open.amount, entry.weighted_forecast, entry.won.amount]),
      [
        ['EUR', '50.05', '2.50', '1000.00'],
        ['USD', '100.10', '5.01', '0.00'],
      ],
    )
    const eur = value[0] as CurrencyValue
    assert.equal(eur.average_won, '1000.00')
    assert.equal(eur.win_rate, 1)
    assert.equal(eur.won.by_month.length, 1)
    assert.equal((value[1] as CurrencyValue).win_rate, null)
    assert.equal((value[1] as CurrencyValue).average_won, null)
  })

  it('sums cents exactly and rounds averages half up', () => {
    assert.equal(addCents(['0.10', '0.20', '999999999999.99', '1234567890.12']), '1001234567890.41')
    assert.equal(divideCents('10.00', 3), '3.33')
    assert.equal(divideCents('0.05', 2), '0.03')
    assert.equal(divideCents('0.00', 1), '0.00')
  })

  /** One random change through the API, or straight in SQL as old data or an import would be. */
  async function randomChange(rng: ReturnType<typeof random>, leads: Array<{ id: number; status: string }>) {
    const roll = rng.next()
    const lead = leads.length > 0 ? rng.pick(leads) : undefined
    const amount = () => rng.pick([null, '0.10', '1234567890.12', String(Math.floor(rng.next() * 100_000) / 100)])
    if (roll < 0.3 || !lead) {
      const status = rng.pick(STATUSES)
      return ctx.as(ctx.adminToken, 'POST', '/leads', {
        client_id: rng.pick(clientIds),
        channel: rng.pick(CHANNELS),
        status,
        assigned_to: rng.pick([null, ...sellers.map((seller) => seller.id)]),
        amount: amount(),
        currency: rng.pick(CURRENCIES),
        ...(status === 'discarded' && { lost_reason: 'price' }),
      })
    }
    if (roll < 0.45) return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { amount: amount() })
    if (roll < 0.52) return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { currency: rng.pick(CURRENCIES) })
    if (roll < 0.72) {
      const status = rng.pick(NEXT[lead.status] ?? [])
      return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
        status,
        ...(status === 'discarded' && { lost_reason: 'competitor' }),
      })
    }
    if (roll < 0.78) {
      return ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, {
        assigned_to: rng.pick([null, ...sellers.map((seller) => seller.id)]),
      })
    }
    if (roll < 0.83) return ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id}`)
    if (roll < 0.88) {
      const trashed = await ctx.db.selectFrom('leads').select('id').where('deleted_at', 'is not', null).execute()
      return ctx.as(ctx.adminToken, 'POST', `/leads/${(trashed.length > 0 ? rng.pick(trashed) : lead).id}/restore`)
    }
    if (roll < 0.94) {
      // Closed in another month, as old data would be.
      const days = Math.floor(rng.next() * 120)
      await sql`update leads set status_changed_at = now() - make_interval(days => ${days}) where id = ${lead.id}`.execute(
        ctx.db,
      )
      return { statusCode: 200 }
    }
    const [from, to] = [rng.pick(sellers), rng.pick(sellers)]
    await ctx.db.updateTable('leads').set({ assigned_to: to.id }).where('assigned_to', '=', from.id).execute()
    return { statusCode: 200 }
  }

  it(`equal a recount from the leads after a random stream of changes (seed ${seed})`, async () => {
    const rng = random(seed)
    for (let round = 0; round < 25; round += 1) {
      const leads = await ctx.db.selectFrom('leads').select(['id', 'status']).orderBy('id').execute()
      const responses = await Promise.all(Array.from({ length: 6 }, () => randomChange(rng, leads)))
      for (const response of responses)
        assert.ok(response.statusCode < 500, `a change failed with ${response.statusCode}`)
    }
    // Paths outside the lead routes: a client trashed with its leads and restored, a seller deleted.
    const [first] = clientIds as [number]
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/clients/${first}?cascade=true`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/clients/${first}/restore`)).statusCode, 200)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/users/${sellers[1]?.id}`)).statusCode, 204)

    // The counter tables against a recount, row by row.
    const totals = await sql<Record<string, unknown>>`
      with kept as (
        select status, channel, assigned_to, currency, sum(leads)::int as n, sum(priced)::int as priced,
          sum(amount) as amount
        from lead_value_totals group by 1, 2, 3, 4 having sum(leads) <> 0 or sum(priced) <> 0 or sum(amount) <> 0
      ), recount as (
        select status, channel, assigned_to, currency, count(*)::int, count(amount)::int, coalesce(sum(amount), 0)
        from leads where deleted_at is null group by 1, 2, 3, 4
      )
      (select 'kept' as side, * from kept except select 'kept', * from recount)
      union all (select 'recount', * from recount except select 'recount', * from kept)`.execute(ctx.db)
    assert.deepEqual(totals.rows, [])
    const months = await sql<Record<string, unknown>>`
      with kept as (
        select month, channel, assigned_to, currency, sum(leads)::int as n, sum(priced)::int as priced,
          sum(amount) as amount
        from lead_won_month_totals group by 1, 2, 3, 4 having sum(leads) <> 0 or sum(priced) <> 0 or sum(amount) <> 0
      ), recount as (
        select utc_month(status_changed_at), channel, assigned_to, currency, count(*)::int, count(amount)::int,
          coalesce(sum(amount), 0)
        from leads where deleted_at is null and status = 'closed' group by 1, 2, 3, 4
      )
      (select 'kept' as side, * from kept except select 'kept', * from recount)
      union all (select 'recount', * from recount except select 'recount', * from kept)`.execute(ctx.db)
    assert.deepEqual(months.rows, [])

    const rows = (await ctx.db
      .selectFrom('leads')
      .select([
        'status',
        'channel',
        'assigned_to',
        'currency',
        'amount',
        sql<string>`to_char(status_changed_at at time zone 'UTC', 'YYYY-MM')`.as('closed_month'),
      ])
      .where('deleted_at', 'is', null)
      .execute()) as LeadRow[]
    assert.ok(rows.length > 20, `the stream left ${rows.length} leads`)
    assert.ok(new Set(rows.map((row) => row.currency)).size > 1, 'several currencies')

    const admin: AuthenticatedActor = { userId: 1, username: 'admin', role: 'admin', requestId: null }
    const seller = sellers[0] as TestUser
    const sales: AuthenticatedActor = { userId: seller.id, username: seller.username, role: 'sales', requestId: null }
    const cases: Array<[AuthenticatedActor, LeadFilter, (row: LeadRow) => boolean]> = [
      [admin, {}, () => true],
      [admin, { status: ['closed', 'discarded'] }, (row) => ['closed', 'discarded'].includes(row.status)],
      [admin, { status: ['new', 'quoted'] }, (row) => ['new', 'quoted'].includes(row.status)],
      [admin, { channel: ['web', 'manual'] }, (row) => ['web', 'manual'].includes(row.channel)],
      [admin, { assigned_to: ['none'] }, (row) => row.assigned_to === null],
      [admin, { assigned_to: [seller.id, 'none'] }, (row) => row.assigned_to === null || row.assigned_to === seller.id],
      [sales, {}, (row) => row.assigned_to === seller.id],
      [sales, { status: ['closed'] }, (row) => row.assigned_to === seller.id && row.status === 'closed'],
    ]
    for (const [actor, filter, keep] of cases) {
      assert.ok(valueCountersAnswer(filter))
      const expected = recount(rows.filter(keep))
      const label = `${actor.role} ${JSON.stringify(filter)}`
      assert.deepEqual((await valueStatsFromCounters(ctx.db, actor, filter)).by_currency, expected, label)
      assert.deepEqual((await valueStatsFromScan(ctx.db, actor, filter)).by_currency, expected, label)
    }
    // A filter beyond the counters is a scan, with the same answer as the recount.
    const filter: LeadFilter = { currency: ['EUR'], amount_min: '1.00' }
    assert.equal(valueCountersAnswer(filter), false)
    const response = await ctx.as(ctx.adminToken, 'GET', '/leads/stats?currency=EUR&amount_min=1.00')
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual(
      response.json().value.by_currency,
      recount(rows.filter((row) => row.currency === 'EUR' && row.amount !== null && cents(row.amount) >= 100n)),
    )
    const all = await ctx.as(ctx.adminToken, 'GET', '/leads/stats')
    assert.deepEqual(all.json().value.by_currency, recount(rows))
  })
})
