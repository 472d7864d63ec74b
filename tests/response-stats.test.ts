import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient } from './helpers/fixtures.js'

const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual'] as const
const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
const OPEN = new Set(['new', 'contacted', 'quoted'])
const TARGET = 3600

interface LeadBody {
  channel: string
  status: string
  assigned_to: number | null
  response_seconds: number | null
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

/** The response_time block recounted from the leads themselves. */
function recount(leads: LeadBody[]): ResponseTime {
  const times = leads
    .map((lead) => lead.response_seconds)
    .filter((seconds): seconds is number => seconds !== null)
    .sort((a, b) => a - b)
  return {
    median_seconds: percentileDisc(times, 0.5),
    p90_seconds: percentileDisc(times, 0.9),
    within_target_ratio: times.length === 0 ? null : times.filter((seconds) => seconds <= TARGET).length / times.length,
    waiting: leads.filter((lead) => lead.response_seconds === null && OPEN.has(lead.status)).length,
  }
}

describe('response times in the lead stats', () => {
  let ctx: TestContext
  let sellers: TestUser[]

  before(async () => {
    ctx = await startTestContext()
    sellers = [await ctx.createUser('sales'), await ctx.createUser('sales')]
    const clients = [await createClient(ctx), await createClient(ctx), await createClient(ctx)]
    const seed = Number(process.env.RESPONSE_STATS_SEED ?? 20261207)
    const next = random(seed)
    const pickOf = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)] as T
    const now = Date.now()
    const rows = Array.from({ length: 240 }, () => {
      const createdAt = new Date(now - Math.floor(next() * 40 * 86_400_000))
      const answered = next() < 0.7
      // Some exactly on the target, many tied, the rest spread over a day.
      const seconds = pickOf([TARGET, 60, Math.floor(next() * 86_400), Math.floor(next() * 7200)])
      return {
        client_id: pickOf(clients).id,
        channel: pickOf(CHANNELS),
        status: pickOf(STATUSES),
        assigned_to: pickOf([...sellers.map((seller) => seller.id), null]),
        created_at: createdAt,
        first_response_at: answered ? new Date(createdAt.getTime() + seconds * 1000) : null,
        // A few in the trash, which no stat counts.
        deleted_at: next() < 0.05 ? new Date() : null,
      }
    })
    await ctx.db.insertInto('leads').values(rows).execute()
  })
  after(() => ctx.close())

  /** Every lead the token sees under the filter, through GET /leads. */
  const leadsOf = async (token: string, query: string): Promise<LeadBody[]> => {
    const leads: LeadBody[] = []
    for (let offset = 0; ; offset += 200) {
      const response = await ctx.as(token, 'GET', `/leads?limit=200&offset=${offset}${query}`)
      assert.equal(response.statusCode, 200, response.body)
      const items = response.json().items as LeadBody[]
      leads.push(...items)
      if (items.length < 200) return leads
    }
  }

  const check = async (token: string, query: string) => {
    const response = await ctx.as(token, 'GET', `/leads/stats?${query}`)
    assert.equal(response.statusCode, 200, response.body)
    const stats = response.json()
    const leads = await leadsOf(token, query ? `&${query}` : '')
    assert.ok(leads.length > 0, query)
    const { by_channel, ...overall } = stats.response_time
    assert.deepEqual(overall, recount(leads), `overall ${query}`)
    for (const channel of CHANNELS) {
      assert.deepEqual(
        by_channel[channel],
        recount(leads.filter((lead) => lead.channel === channel)),
        `${channel} ${query}`,
      )
    }
    const assignees = new Set(leads.map((lead) => lead.assigned_to))
    assert.equal(stats.by_assignee.length, assignees.size)
    for (const entry of stats.by_assignee as Array<{ user_id: number | null; response_time: ResponseTime }>) {
      assert.deepEqual(
        entry.response_time,
        recount(leads.filter((lead) => lead.assigned_to === entry.user_id)),
        `assignee ${entry.user_id} ${query}`,
      )
    }
    return stats
  }

  it('match a recount from the leads, overall, by channel and by assignee, for the same filters', async () => {
    const all = await check(ctx.adminToken, '')
    assert.ok(all.response_time.median_seconds !== null && all.response_time.waiting > 0)
    await check(ctx.adminToken, 'status=new&status=contacted')
    await check(ctx.adminToken, `channel=web&assigned_to=${sellers[0]?.id}`)
    await check(ctx.adminToken, 'assigned_to=none&q=prueba')
    const from = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10)
    await check(ctx.adminToken, `created_from=${from}`)
    // A seller's stats are of their own leads.
    const own = await check(sellers[1]?.token as string, '')
    assert.deepEqual(
      own.by_assignee.map((entry: { user_id: number }) => entry.user_id),
      [sellers[1]?.id],
    )
  })

  it('follow the response target of the settings', async () => {
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', { response_target: 'PT2M' })
    assert.equal(put.statusCode, 200, put.body)
    const stats = (await ctx.as(ctx.adminToken, 'GET', '/leads/stats')).json()
    const times = (await leadsOf(ctx.adminToken, ''))
      .map((lead) => lead.response_seconds)
      .filter((seconds): seconds is number => seconds !== null)
    assert.equal(
      stats.response_time.within_target_ratio,
      times.filter((seconds) => seconds <= 120).length / times.length,
    )
  })

  it('are empty for filters that match no answered lead', async () => {
    const stats = (await ctx.as(ctx.adminToken, 'GET', '/leads/stats?created_to=2001-01-01')).json()
    assert.deepEqual(stats.response_time.by_channel.web, {
      median_seconds: null,
      p90_seconds: null,
      within_target_ratio: null,
      waiting: 0,
    })
    assert.equal(stats.response_time.median_seconds, null)
  })
})
