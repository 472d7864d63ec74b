import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { buildApp } from '../src/app.js'
import { purgeEndedRequestCounts } from '../src/auth/rate-limit.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

const LIMIT = 600

/** The RateLimit header's remaining count and seconds left (`"per-minute";r=599;t=60`). */
function remaining(headers: Record<string, unknown>): { r: number; t: number } {
  const match = /^"per-minute";r=(\d+);t=(\d+)$/.exec(String(headers.ratelimit))
  assert.ok(match, `RateLimit: ${headers.ratelimit}`)
  return { r: Number(match[1]), t: Number(match[2]) }
}

describe('rate limits', () => {
  let ctx: TestContext
  // A second instance on the same database, as behind a load balancer.
  let other: FastifyInstance
  let seller: TestUser
  let colleague: TestUser

  before(async () => {
    ctx = await startTestContext({ RATE_LIMIT_PER_MINUTE: String(LIMIT) })
    other = await buildApp({ config: ctx.config, db: ctx.db, jwtSecret: ctx.config.jwtSecret as string })
    seller = await ctx.createUser('sales')
    colleague = await ctx.createUser('sales')
  })
  after(async () => {
    await other.close()
    await ctx.close()
  })

  it('answers the 601st request of a minute with 429 and Retry-After on any instance, counting down before', async () => {
    const me = (token: string, instance: 'this' | 'other') =>
      instance === 'this'
        ? ctx.as(token, 'GET', '/auth/me')
        : other.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
    const first = await me(seller.token, 'this')
    assert.equal(first.statusCode, 200)
    assert.equal(first.headers['ratelimit-policy'], `"per-minute";q=${LIMIT};w=60`)
    const start = remaining(first.headers)
    // Requests before this test (the login) count too.
    assert.ok(start.r < LIMIT && start.r >= LIMIT - 3, `${start.r} left`)
    assert.ok(start.t >= 1 && start.t <= 60)

    // Both instances count in one window: the remaining count falls by one a request, whichever answers.
    for (let left = start.r; left > 0; left--) {
      const answer = await me(seller.token, left % 2 ? 'other' : 'this')
      assert.equal(answer.statusCode, 200, answer.body)
      assert.equal(remaining(answer.headers).r, left - 1)
    }

    for (const instance of ['this', 'other'] as const) {
      const refused = await me(seller.token, instance)
      assert.equal(refused.statusCode, 429, refused.body)
      const problem = problemOf(refused)
      assert.equal(problem.code, 'rate_limited')
      assert.match(problem.detail, /More than 600 requests this minute by this user/)
      const { r, t } = remaining(refused.headers)
      assert.equal(r, 0)
      assert.equal(refused.headers['retry-after'], String(t))
    }
    // Writes too, and nothing is written.
    const refusedWrite = await ctx.as(seller.token, 'POST', '/clients', { contact_name: 'Tarde', phone: '04125550001' })
    assert.equal(refusedWrite.statusCode, 429)
    const written = await ctx.db.selectFrom('clients').select('id').where('phone', '=', '+584125550001').execute()
    assert.deepEqual(written, [])

    // Another user is not affected.
    const colleagues = await ctx.as(colleague.token, 'GET', '/auth/me')
    assert.equal(colleagues.statusCode, 200)
    assert.ok(remaining(colleagues.headers).r >= LIMIT - 3)

    // Once the minute has passed (its counter purged, or its window over) the user starts afresh.
    await ctx.db.updateTable('request_counts').set({ window_started_at: sql`now() - interval '61 seconds'` }).execute()
    assert.ok((await purgeEndedRequestCounts(ctx.db)) >= 2)
    const again = await ctx.as(seller.token, 'GET', '/auth/me')
    assert.equal(again.statusCode, 200)
    assert.equal(remaining(again.headers).r, LIMIT - 1)
  })

  it('counts an API key apart from its owner, at its own limit, which only an admin may raise', async () => {
    const create = (token: string, body: Record<string, unknown>) =>
      ctx.as(token, 'POST', '/auth/api-keys', { name: 'script', scopes: ['read'], ...body })
    const raised = await create(colleague.token, { rate_limit_per_minute: LIMIT + 1 })
    assert.equal(raised.statusCode, 403, raised.body)
    assert.match(problemOf(raised).detail, /Only admins may give a key a rate limit above 600/)
    const tooSmall = await create(colleague.token, { rate_limit_per_minute: 0 })
    assert.equal(tooSmall.statusCode, 400)
    assert.match(tooSmall.body, /rate_limit_per_minute/)
    const admins = await create(ctx.adminToken, { rate_limit_per_minute: 5000 })
    assert.equal(admins.statusCode, 201, admins.body)
    assert.equal(admins.json().rate_limit_per_minute, 5000)

    const small = await create(colleague.token, { rate_limit_per_minute: 2 })
    assert.equal(small.statusCode, 201, small.body)
    assert.equal(small.json().rate_limit_per_minute, 2)
    const key = small.json().key as string
    const statuses = []
    for (let index = 0; index < 3; index++) {
      const answer = await ctx.as(key, 'GET', '/auth/me')
      statuses.push([answer.statusCode, answer.headers['ratelimit-policy'], remaining(answer.headers).r])
    }
    assert.deepEqual(statuses, [
      [200, '"per-minute";q=2;w=60', 1],
      [200, '"per-minute";q=2;w=60', 0],
      [429, '"per-minute";q=2;w=60', 0],
    ])
    const refused = await ctx.as(key, 'GET', '/auth/me')
    assert.match(problemOf(refused).detail, /with this API key/)
    // The owner's own token keeps its own count.
    const owners = await ctx.as(colleague.token, 'GET', '/auth/me')
    assert.equal(owners.statusCode, 200)
    assert.equal(owners.headers['ratelimit-policy'], `"per-minute";q=${LIMIT};w=60`)
  })

  it('leaves requests without a token to their own throttles', async () => {
    const health = await ctx.inject({ method: 'GET', url: '/health' })
    assert.equal(health.statusCode, 200)
    assert.equal(health.headers.ratelimit, undefined)
    const login = await ctx.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: seller.username, password: seller.password },
    })
    assert.equal(login.statusCode, 200)
    assert.equal(login.headers['ratelimit-policy'], undefined)
  })
})
