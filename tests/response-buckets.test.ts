import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { bucketsAnswer } from '../src/leads/stats.js'
import { durationSeconds } from '../src/pipeline/business-time.js'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient } from './helpers/fixtures.js'

const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual'] as const
const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
const OPEN = new Set(['new', 'contacted', 'quoted'])

interface LeadRow {
  id: number
  channel: string
  status: string
  assigned_to: number | null
  response_seconds: number | null
  created_at: Date
}
interface ResponseTime {
  median_seconds: number | null
  p90_seconds: number | null
  within_target_ratio: number | null
  waiting: number
}

/** A small seeded generator (mulberry32): the same data on every run, another seed another set. */
function random(seed: number) {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** PostgreSQL's percentile_disc: the first value whose position reaches the fraction. */
function percentileDisc(sorted: number[], fraction: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.max(1, Math.ceil(fraction * sorted.length)) - 1] as number
}

function recount(leads: LeadRow[], target: number): ResponseTime {
  const times = leads
    .map((lead) => lead.response_seconds)
    .filter((seconds): seconds is number => seconds !== null)
    .sort((a, b) => a - b)
  return {
    median_seconds: percentileDisc(times, 0.5),
    p90_seconds: percentileDisc(times, 0.9),
    within_target_ratio: times.length === 0 ? null : times.filter((seconds) => seconds <= target).length / times.length,
    waiting: leads.filter((lead) => lead.response_seconds === null && OPEN.has(lead.status)).length,
  }
}

describe('response times from the histogram and from the scan', () => {
  let ctx: TestContext
  let sellers: TestUser[]
  const next = random(Number(process.env.RESPONSE_BUCKETS_SEED ?? 20261208))
  const pickOf = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)] as T

  before(async () => {
    ctx = await startTestContext()
    sellers = [await ctx.createUser('sales'), await ctx.createUser('sales'), await ctx.createUser('sales')]
    const clients = [await createClient(ctx), await createClient(ctx)]
    const now = Date.now()
    const rows = Array.from({ length: 420 }, () => {
      const createdAt = new Date(now - Math.floor(next() * 40 * 86_400_000))
      // Ties under a minute, crowds inside one wide bucket (around 5,000 s and around the target),
      // a spread over days and a few of decades.
      const seconds = pickOf([
        () => Math.floor(next() * 20),
        () => 5000 + Math.floor(next() * 100),
        () => 3540 + Math.floor(next() * 120),
        () => Math.floor(next() * 900_000),
        () => (next() < 0.02 ? 1_500_000_000 : 61),
      ])()
      return {
        client_id: pickOf(clients).id,
        channel: pickOf(CHANNELS),
        status: pickOf(STATUSES),
        assigned_to: pickOf([...sellers.map((seller) => seller.id), null]),
        created_at: createdAt,
        first_response_at: next() < 0.75 ? new Date(createdAt.getTime() + seconds * 1000) : null,
        deleted_at: next() < 0.05 ? new Date() : null,
      }
    })
    await ctx.db.insertInto('leads').values(rows).execute()
  })
  after(() => ctx.close())

  const liveLeads = async (): Promise<LeadRow[]> =>
    ctx.db
      .selectFrom('leads')
      .select(['id', 'channel', 'status', 'assigned_to', 'response_seconds', 'created_at'])
      .where('deleted_at', 'is', null)
      .execute()

  /** The histogram against a recount of every live lead, bucket by bucket. */
  const assertHistogram = async () => {
    const { rows } = await sql<{ channel: string; assigned_to: number | null; bucket: number | null; diff: number }>`
      with kept as (
        select channel, assigned_to, bucket, sum(leads)::int as leads from lead_response_buckets
        group by 1, 2, 3 having sum(leads) <> 0
      ),
      counted as (
        select l.channel, l.assigned_to, b.bucket, count(*)::int as leads
        from leads l join response_bucket_bounds b on l.response_seconds >= b.lo and l.response_seconds < b.hi
        where l.deleted_at is null group by 1, 2, 3
        union all
        select channel, assigned_to, null, count(*)::int from leads
        where deleted_at is null and response_seconds is null and status in ('new', 'contacted', 'quoted')
        group by 1, 2
      )
      select channel, a as assigned_to, b as bucket, coalesce(k.leads, 0) - coalesce(c.leads, 0) as diff
      from (select *, coalesce(assigned_to, 0) as a, coalesce(bucket, -99) as b from kept) k
      full join (select *, coalesce(assigned_to, 0) as a, coalesce(bucket, -99) as b from counted) c
        using (channel, a, b)
      where coalesce(k.leads, 0) <> coalesce(c.leads, 0)`.execute(ctx.db)
    assert.deepEqual(rows, [])
  }

  const check = async (
    token: string,
    query: string,
    target: number,
    matches: (lead: LeadRow) => boolean,
    scope?: number,
  ) => {
    const response = await ctx.as(token, 'GET', `/leads/stats?${query}`)
    assert.equal(response.statusCode, 200, response.body)
    const stats = response.json()
    const leads = (await liveLeads()).filter(
      (lead) => matches(lead) && (scope === undefined || lead.assigned_to === scope),
    )
    assert.ok(leads.length > 0, query)
    const { by_channel, ...overall } = stats.response_time
    assert.deepEqual(overall, recount(leads, target), `overall ${query}`)
    for (const channel of CHANNELS) {
      const expected = recount(
        leads.filter((lead) => lead.channel === channel),
        target,
      )
      assert.deepEqual(by_channel[channel], expected, `${channel} ${query}`)
    }
    for (const entry of stats.by_assignee as Array<{ user_id: number | null; response_time: ResponseTime }>) {
      const expected = recount(
        leads.filter((lead) => lead.assigned_to === entry.user_id),
        target,
      )
      assert.deepEqual(entry.response_time, expected, `assignee ${entry.user_id} ${query}`)
    }
  }

  const checkAll = async (target: number) => {
    await assertHistogram()
    const [first, second] = sellers as [TestUser, TestUser]
    const monthAgo = new Date(Date.now() - 20 * 86_400_000).toISOString().slice(0, 10)
    const any = () => true
    // The histogram: no filter, channels, assignees, a seller's own.
    await check(ctx.adminToken, '', target, any)
    await check(ctx.adminToken, 'channel=web&channel=manual', target, (lead) =>
      ['web', 'manual'].includes(lead.channel),
    )
    await check(
      ctx.adminToken,
      `assigned_to=${first.id}&assigned_to=none`,
      target,
      (lead) => lead.assigned_to === first.id || lead.assigned_to === null,
    )
    await check(ctx.adminToken, `channel=whatsapp&assigned_to=${second.id}`, target, (lead) => {
      return lead.channel === 'whatsapp' && lead.assigned_to === second.id
    })
    await check(second.token, '', target, any, second.id)
    await check(
      second.token,
      'channel=instagram&channel=web',
      target,
      (lead) => lead.channel !== 'whatsapp' && lead.channel !== 'manual',
      second.id,
    )
    // The scan: a status, a creation range.
    await check(ctx.adminToken, 'status=new&status=closed', target, (lead) => ['new', 'closed'].includes(lead.status))
    await check(ctx.adminToken, `created_from=${monthAgo}`, target, (lead) => lead.created_at >= new Date(monthAgo))
  }

  it('are read from the histogram for channel and assignee filters only', () => {
    assert.equal(bucketsAnswer({}), true)
    assert.equal(bucketsAnswer({ channel: ['web'], assigned_to: ['me', 'none'], status: undefined }), true)
    assert.equal(bucketsAnswer({ status: ['new'] }), false)
    assert.equal(bucketsAnswer({ created_from: '2026-11-01' }), false)
  })

  it('bounds cover every integer once, in order', async () => {
    const { rows } = await sql<{ buckets: number; gaps: number; lo: string; hi: string }>`
      select count(*)::int as buckets,
        (select count(*)::int from response_bucket_bounds b join response_bucket_bounds n on n.bucket = b.bucket + 1
          where n.lo <> b.hi or b.hi <= b.lo) as gaps,
        min(lo)::text as lo, max(hi)::text as hi
      from response_bucket_bounds`.execute(ctx.db)
    assert.deepEqual(rows[0], { buckets: rows[0]?.buckets, gaps: 0, lo: '-2147483648', hi: '2147483648' })
  })

  it('match a recount after the data is loaded', async () => {
    await checkAll(3600)
  })

  it('match a recount after trash, restore, purge, reassignments, status changes and direct writes', async () => {
    const leads = await liveLeads()
    const [first, second, third] = sellers as [TestUser, TestUser, TestUser]
    const trashed = leads.slice(0, 30)
    for (const lead of trashed) {
      assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id}`)).statusCode, 204)
    }
    for (const lead of trashed.slice(0, 12)) {
      assert.equal((await ctx.as(ctx.adminToken, 'POST', `/leads/${lead.id}/restore`)).statusCode, 200)
    }
    for (const lead of trashed.slice(12, 17)) {
      assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/leads/${lead.id}`)).statusCode, 204)
    }
    for (const [index, lead] of leads.slice(30, 70).entries()) {
      const assignee = [first.id, second.id, third.id, null][index % 4]
      const response = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: assignee })
      assert.equal(response.statusCode, 200, response.body)
    }
    // Out of `new`: the first response, now.
    for (const lead of leads
      .slice(70)
      .filter((row) => row.status === 'new' && row.response_seconds === null)
      .slice(0, 10)) {
      const response = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })
      assert.equal(response.statusCode, 200, response.body)
    }
    // Any writer keeps the histogram: a statement over many leads at once.
    await sql`update leads set first_response_at = created_at + interval '3599 seconds'
      where id % 7 = 0 and deleted_at is null`.execute(ctx.db)
    await sql`update leads set first_response_at = null where id % 11 = 0`.execute(ctx.db)
    await sql`delete from leads where id % 13 = 0`.execute(ctx.db)
    await checkAll(3600)
  })

  it('count the target inside its bucket, a fractional target by its whole seconds', async () => {
    for (const duration of ['PT1H0.5S', 'PT83M20S', 'PT50S', 'P100Y']) {
      const seconds = Math.floor(durationSeconds(duration) ?? 0)
      const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', { response_target: duration })
      assert.equal(put.statusCode, 200, put.body)
      await check(ctx.adminToken, '', seconds, () => true)
      await check(ctx.adminToken, 'status=quoted', seconds, (lead) => lead.status === 'quoted')
    }
  })
})
