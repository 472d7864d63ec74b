import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import { purgeExpiredLoginFailures } from '../src/auth/login-failures-purge.js'
import { problemOf, startTestContext, type TestContext } from './helpers/context.js'

const PER_USER = 5
const PER_ADDRESS = 20
const WINDOW_SECONDS = 900
const LIMITS = {
  LOGIN_MAX_FAILURES_PER_USER: String(PER_USER),
  LOGIN_MAX_FAILURES_PER_ADDRESS: String(PER_ADDRESS),
  LOGIN_THROTTLE_WINDOW_SECONDS: String(WINDOW_SECONDS),
}

interface Attempt {
  username: string
  password: string
  /** The connection's address (app.inject's default is 127.0.0.1). */
  remoteAddress: string
  forwardedFor?: string
}

function attempt(ctx: TestContext, { username, password, remoteAddress, forwardedFor }: Attempt) {
  return ctx.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress,
    headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
    payload: { username, password },
  })
}

/** The counters of login_failures, keyed `user:<name>` and `address:<ip>`. */
async function counters(ctx: TestContext, prefix: string): Promise<Record<string, number>> {
  const rows = await ctx.db
    .selectFrom('login_failures')
    .select(['key', 'failures'])
    .where('key', 'like', `${prefix}%`)
    .execute()
  return Object.fromEntries(rows.map((row) => [row.key, row.failures]))
}

function assertThrottled(response: LightMyRequestResponse, label: string) {
  assert.equal(response.statusCode, 429, `${label}: ${response.body}`)
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/, label)
  assert.equal(problemOf(response).code, 'too_many_attempts', label)
  assert.equal(response.json().access_token, undefined, label)
  const retryAfter = Number(response.headers['retry-after'])
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= WINDOW_SECONDS,
    `${label}: Retry-After ${response.headers['retry-after']}`,
  )
}

function tally(responses: LightMyRequestResponse[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const response of responses) counts[response.statusCode] = (counts[response.statusCode] ?? 0) + 1
  return counts
}

function assertInvalidCredentials(response: LightMyRequestResponse, label: string) {
  assert.equal(response.statusCode, 401, `${label}: ${response.body}`)
  assert.equal(problemOf(response).code, 'invalid_credentials', label)
}

describe('login brute force, TRUST_PROXY off', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext(LIMITS)
  })
  after(() => ctx?.close())

  it('throttles one username from one address after 5 failures, even the right password', async () => {
    const user = await ctx.createUser('sales')
    const remoteAddress = '127.0.0.2'
    for (let n = 1; n <= PER_USER; n++) {
      const response = await attempt(ctx, { username: user.username, password: `wrong-${n}`, remoteAddress })
      assertInvalidCredentials(response, `failure ${n}`)
    }
    assert.deepEqual(await counters(ctx, `user:${user.username}`), { [`user:${user.username}`]: PER_USER })
    assert.deepEqual(await counters(ctx, `address:${remoteAddress}`), { [`address:${remoteAddress}`]: PER_USER })

    assertThrottled(
      await attempt(ctx, { username: user.username, password: 'wrong-6', remoteAddress }),
      'the 6th wrong password',
    )
    assertThrottled(
      await attempt(ctx, { username: user.username, password: user.password, remoteAddress }),
      'the right password',
    )
    // The username is throttled wherever the attempt comes from, however it is written.
    assertThrottled(
      await attempt(ctx, {
        username: ` ${user.username.toUpperCase()} `,
        password: user.password,
        remoteAddress: '127.0.0.5',
      }),
      'the right password, another address, the username in capitals',
    )
    // The address is not throttled yet (5 of 20): another user logs in from it.
    const other = await ctx.createUser('management')
    const ok = await attempt(ctx, { username: other.username, password: other.password, remoteAddress })
    assert.equal(ok.statusCode, 200, ok.body)
    // The right password while throttled did not clear the count, as a success would have.
    const left = (await counters(ctx, `user:${user.username}`))[`user:${user.username}`] ?? 0
    assert.ok(left >= PER_USER, `the username's count is ${left}`)
  })

  it("does not let X-Forwarded-For or the username's case dodge the username throttle", async () => {
    const user = await ctx.createUser('sales')
    const remoteAddress = '127.0.0.3'
    let forged = 0
    const forwardedFor = () => `127.0.9.${++forged}`
    for (let n = 1; n <= PER_USER; n++) {
      const username = n % 2 === 0 ? user.username.toUpperCase() : user.username
      const response = await attempt(ctx, {
        username,
        password: `wrong-${n}`,
        remoteAddress,
        forwardedFor: forwardedFor(),
      })
      assertInvalidCredentials(response, `failure ${n}`)
    }
    assert.deepEqual(await counters(ctx, `user:${user.username}`), { [`user:${user.username}`]: PER_USER })
    assert.deepEqual(await counters(ctx, `address:${remoteAddress}`), { [`address:${remoteAddress}`]: PER_USER })
    assert.deepEqual(await counters(ctx, 'address:127.0.9.'), {}, 'no forged address was counted')
    assertThrottled(
      await attempt(ctx, { username: user.username, password: 'wrong-6', remoteAddress, forwardedFor: forwardedFor() }),
      'a 6th wrong password with yet another X-Forwarded-For',
    )
    assertThrottled(
      await attempt(ctx, {
        username: user.username,
        password: user.password,
        remoteAddress,
        forwardedFor: forwardedFor(),
      }),
      'the right password with yet another X-Forwarded-For',
    )
  })

  it('counts every attempt behind a changing X-Forwarded-For against the one real address', async () => {
    const remoteAddress = '127.0.0.8'
    let forged = 100
    const forwardedFor = () => `127.0.9.${++forged}`
    // Spraying 20 usernames, each failing once, with a new X-Forwarded-For each time…
    for (let n = 1; n <= PER_ADDRESS; n++) {
      const response = await attempt(ctx, {
        username: `spray-${n}.${remoteAddress}`,
        password: 'password1',
        remoteAddress,
        forwardedFor: forwardedFor(),
      })
      assertInvalidCredentials(response, `spray ${n}`)
    }
    assert.deepEqual(await counters(ctx, `address:${remoteAddress}`), { [`address:${remoteAddress}`]: PER_ADDRESS })
    assert.deepEqual(await counters(ctx, 'address:127.0.9.'), {}, 'no forged address was counted')
    assert.equal(Object.keys(await counters(ctx, 'user:spray-')).length, PER_ADDRESS, 'one failure per username')

    // …throttles the address: a user who never failed, with the right password, gets 429 from it…
    const fresh = await ctx.createUser('sales')
    assertThrottled(
      await attempt(ctx, {
        username: fresh.username,
        password: fresh.password,
        remoteAddress,
        forwardedFor: forwardedFor(),
      }),
      'a fresh username from the throttled address',
    )
    assert.deepEqual(await counters(ctx, `user:${fresh.username}`), {}, 'not because of a count of their own')
    // …and logs in from another address.
    const elsewhere = await attempt(ctx, {
      username: fresh.username,
      password: fresh.password,
      remoteAddress: '127.0.0.4',
    })
    assert.equal(elsewhere.statusCode, 200, elsewhere.body)
  })

  it('holds both limits under concurrent attempts: no more passwords are checked than the limit allows', async () => {
    // Concurrent wrong passwords for one user: only 5 may be checked (401), the rest must wait (429).
    const user = await ctx.createUser('sales')
    const burst = await Promise.all(
      Array.from({ length: 15 }, (_, n) =>
        attempt(ctx, { username: user.username, password: `wrong-${n}`, remoteAddress: '127.0.0.9' }),
      ),
    )
    const userCount = await counters(ctx, `user:${user.username}`)
    const rightPassword = await attempt(ctx, {
      username: user.username,
      password: user.password,
      remoteAddress: '127.0.0.11',
    })
    // Concurrent attempts on 30 usernames from one address: only 20 may be checked.
    const spray = await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        attempt(ctx, { username: `burst-${n}.${user.username}`, password: 'password1', remoteAddress: '127.0.0.10' }),
      ),
    )
    // One report, so that a failure shows both limits.
    assert.deepEqual(
      {
        burst: tally(burst),
        userCount,
        rightPasswordAfterBurst: rightPassword.statusCode,
        spray: tally(spray),
        addressCount: await counters(ctx, 'address:127.0.0.10'),
      },
      {
        burst: { 401: PER_USER, 429: 15 - PER_USER },
        userCount: { [`user:${user.username}`]: PER_USER },
        rightPasswordAfterBurst: 429,
        spray: { 401: PER_ADDRESS, 429: 30 - PER_ADDRESS },
        addressCount: { 'address:127.0.0.10': PER_ADDRESS },
      },
    )
    assertThrottled(rightPassword, 'the right password after the burst')
  })

  it('purges the counters of ended windows only', async () => {
    await ctx.db
      .insertInto('login_failures')
      .values([
        { key: 'address:192.0.2.2', failures: 2, window_started_at: sql`now() - interval '5 minutes'` },
        { key: 'address:192.0.2.3', failures: 2, window_started_at: sql`now() - interval '20 minutes'` },
      ])
      .execute()
    await purgeExpiredLoginFailures(ctx.db, WINDOW_SECONDS)
    assert.deepEqual(await counters(ctx, 'address:192.0.2.'), { 'address:192.0.2.2': 2 })
  })
})

describe('login brute force behind one proxy (TRUST_PROXY=1)', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext({ ...LIMITS, TRUST_PROXY: '1' })
  })
  after(() => ctx?.close())

  it('throttles a client that rotates the leftmost X-Forwarded-For entry behind an appending proxy', async () => {
    const proxy = '127.0.0.7'
    const client = '203.0.113.7'
    const answers: LightMyRequestResponse[] = []
    for (let n = 1; n <= PER_ADDRESS + 5; n++) {
      answers.push(
        await attempt(ctx, {
          username: `rotating-${n}`,
          password: 'password1',
          remoteAddress: proxy,
          // What the client forged, then what the proxy appended: the address it saw.
          forwardedFor: `198.51.100.${n}, ${client}`,
        }),
      )
    }
    assert.deepEqual(tally(answers), { 401: PER_ADDRESS, 429: 5 })
    assert.deepEqual(await counters(ctx, 'address:198.51.100.'), {}, 'forged entries count for nothing')
    assert.deepEqual(await counters(ctx, `address:${client}`), { [`address:${client}`]: PER_ADDRESS })
  })

  it('counts X-Forwarded-For addresses separately, while the username limit still holds', async () => {
    const proxy = '127.0.0.6'
    const user = await ctx.createUser('sales')
    for (let n = 1; n <= PER_USER; n++) {
      const response = await attempt(ctx, {
        username: user.username,
        password: `wrong-${n}`,
        remoteAddress: proxy,
        forwardedFor: `127.0.1.${n}`,
      })
      assertInvalidCredentials(response, `failure ${n}`)
    }
    const expected: Record<string, number> = {}
    for (let n = 1; n <= PER_USER; n++) expected[`address:127.0.1.${n}`] = 1
    assert.deepEqual(await counters(ctx, 'address:127.0.1.'), expected, 'each forwarded address counted once')
    assert.deepEqual(await counters(ctx, `address:${proxy}`), {}, "the proxy's own address is not the client's")
    assertThrottled(
      await attempt(ctx, {
        username: user.username,
        password: user.password,
        remoteAddress: proxy,
        forwardedFor: '127.0.1.99',
      }),
      'the right password from a new forwarded address',
    )

    // One forwarded address that fails 20 times is throttled; another one behind the same proxy is not.
    const sprayer = '127.0.2.1'
    for (let n = 1; n <= PER_ADDRESS; n++) {
      const response = await attempt(ctx, {
        username: `spray-${n}-${user.username}`,
        password: 'password1',
        remoteAddress: proxy,
        forwardedFor: sprayer,
      })
      assertInvalidCredentials(response, `spray ${n}`)
    }
    assert.deepEqual(await counters(ctx, `address:${sprayer}`), { [`address:${sprayer}`]: PER_ADDRESS })
    const fresh = await ctx.createUser('sales')
    assertThrottled(
      await attempt(ctx, {
        username: fresh.username,
        password: fresh.password,
        remoteAddress: proxy,
        forwardedFor: sprayer,
      }),
      'a fresh username from the throttled forwarded address',
    )
    const neighbour = await attempt(ctx, {
      username: fresh.username,
      password: fresh.password,
      remoteAddress: proxy,
      forwardedFor: '127.0.2.2',
    })
    assert.equal(neighbour.statusCode, 200, neighbour.body)
  })
})

describe('expired login failure counters', () => {
  let ctx: TestContext

  before(async () => {
    // A one-second window: the server purges once a window.
    ctx = await startTestContext({ ...LIMITS, LOGIN_THROTTLE_WINDOW_SECONDS: '1' })
  })
  after(() => ctx?.close())

  it('are purged in the background by the running server', async () => {
    await ctx.db
      .insertInto('login_failures')
      .values([
        { key: 'address:192.0.2.1', failures: 3, window_started_at: sql`now() - interval '1 hour'` },
        { key: 'user:gone', failures: 7, window_started_at: sql`now() - interval '1 day'` },
      ])
      .execute()
    let left = 2
    for (let attempt = 0; attempt < 50 && left > 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      left = Object.keys(await counters(ctx, '')).length
    }
    assert.equal(left, 0, 'the expired counters are gone')
  })
})
