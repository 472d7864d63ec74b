import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { startRuntime } from '../src/runtime.js'
import { ADMIN, problemOf, startTestContext, type TestContext } from './helpers/context.js'
import { checkedInject } from './helpers/contract.js'

const MAX_FAILURES = 3

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function handMadeToken(header: object, claims: object, secret?: string): string {
  const unsigned = `${base64url(header)}.${base64url(claims)}`
  const signature = secret ? createHmac('sha256', secret).update(unsigned).digest('base64url') : ''
  return `${unsigned}.${signature}`
}

describe('auth', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext({ LOGIN_MAX_FAILURES_PER_USER: String(MAX_FAILURES) })
  })
  after(() => ctx?.close())

  it('logs in with a form body, as the OAuth2 password flow and curl send it', async () => {
    const response = await ctx.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=password&username=admin&password=admin123',
    })
    assert.equal(response.statusCode, 200)
    const body = response.json()
    assert.equal(body.token_type, 'bearer')
    assert.equal(body.expires_in, 3600)
    assert.match(body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    assert.equal(response.headers['cache-control'], 'no-store')
    const claims = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url').toString())
    assert.deepEqual(Object.keys(claims).sort(), ['exp', 'iat', 'role', 'sub', 'ver'])
    assert.equal(claims.role, 'admin')
    assert.equal(claims.exp - claims.iat, 3600)
  })

  it('logs in with JSON, and the username is case-insensitive', async () => {
    const response = await ctx.as(undefined, 'POST', '/auth/login', { username: 'ADMIN', password: ADMIN.password })
    assert.equal(response.statusCode, 200)
    const me = await ctx.as(response.json().access_token, 'GET', '/auth/me')
    assert.equal(me.statusCode, 200)
    assert.equal(me.json().username, 'admin')
    assert.equal(me.json().role, 'admin')
    assert.equal(me.json().password_hash, undefined)
    assert.ok(me.json().last_login_at, 'last_login_at is set by a login')
  })

  it('gives the same 401 for a wrong password, an unknown user and a deactivated user', async () => {
    const inactive = await ctx.createUser('sales', { is_active: false })
    const attempts = [
      { username: 'admin', password: 'not-the-password' },
      { username: 'nobody-here', password: 'whatever-password' },
      { username: inactive.username, password: inactive.password },
    ]
    const bodies = []
    for (const attempt of attempts) {
      const response = await ctx.as(undefined, 'POST', '/auth/login', attempt)
      assert.equal(response.statusCode, 401)
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
      const { request_id: _requestId, ...problem } = problemOf(response)
      bodies.push(problem)
    }
    assert.equal(bodies[0]?.code, 'invalid_credentials')
    assert.deepEqual(bodies[1], bodies[0])
    assert.deepEqual(bodies[2], bodies[0])
    // Those failures must not throttle the admin.
    await ctx.db.deleteFrom('login_failures').execute()
  })

  it('throttles repeated failures per username with 429 and Retry-After, and the count survives a restart', async () => {
    const user = await ctx.createUser('sales')
    for (let attempt = 0; attempt < MAX_FAILURES; attempt++) {
      const response = await ctx.as(undefined, 'POST', '/auth/login', {
        username: user.username,
        password: 'wrong-one',
      })
      assert.equal(response.statusCode, 401)
    }
    const throttled = await ctx.as(undefined, 'POST', '/auth/login', {
      username: user.username,
      password: user.password,
    })
    assert.equal(throttled.statusCode, 429, 'even the right password waits out the window')
    assert.equal(problemOf(throttled).code, 'too_many_attempts')
    const retryAfter = Number(throttled.headers['retry-after'])
    assert.ok(retryAfter > 0 && retryAfter <= 900, `Retry-After ${throttled.headers['retry-after']}`)

    await ctx.restart()
    const afterRestart = await ctx.as(undefined, 'POST', '/auth/login', {
      username: user.username.toUpperCase(),
      password: user.password,
    })
    assert.equal(afterRestart.statusCode, 429)
    // Another user from the same address is not locked out by it.
    const other = await ctx.as(undefined, 'POST', '/auth/login', ADMIN)
    assert.equal(other.statusCode, 200)
  })

  it('clears a username count on success', async () => {
    const user = await ctx.createUser('sales')
    for (let round = 0; round < 2; round++) {
      for (let attempt = 0; attempt < MAX_FAILURES - 1; attempt++) {
        await ctx.as(undefined, 'POST', '/auth/login', { username: user.username, password: 'wrong-one' })
      }
      const ok = await ctx.as(undefined, 'POST', '/auth/login', { username: user.username, password: user.password })
      assert.equal(ok.statusCode, 200)
    }
  })

  it('refuses a missing token, garbage, an expired token, another secret, alg none, a missing claim and an iat ahead', async () => {
    const secret = ctx.config.jwtSecret as string
    const now = Math.floor(Date.now() / 1000)
    const claims = { sub: '1', role: 'admin', ver: 0, iat: now, exp: now + 600 }
    const tokens = {
      missing: undefined,
      garbage: 'not-a-token',
      expired: handMadeToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, iat: now - 7200, exp: now - 3600 }, secret),
      otherSecret: handMadeToken({ alg: 'HS256', typ: 'JWT' }, claims, 'another-secret-of-enough-length-000000'),
      algNone: handMadeToken({ alg: 'none', typ: 'JWT' }, claims),
      withoutExp: handMadeToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, exp: undefined }, secret),
      withoutIat: handMadeToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, iat: undefined }, secret),
      withoutSub: handMadeToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, sub: undefined }, secret),
      withoutVer: handMadeToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, ver: undefined }, secret),
      issuedInTheFuture: handMadeToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, iat: now + 120 }, secret),
    }
    // The same claims signed with the right secret pass: the refusals above are for the reasons named.
    const good = await ctx.as(handMadeToken({ alg: 'HS256', typ: 'JWT' }, claims, secret), 'GET', '/auth/me')
    assert.equal(good.statusCode, 200)
    for (const [name, token] of Object.entries(tokens)) {
      const response = await ctx.as(token, 'GET', '/auth/me')
      assert.equal(response.statusCode, 401, name)
      assert.equal(problemOf(response).code, 'unauthorized', name)
    }
    const basic = await ctx.inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: 'Basic YWRtaW46YWRtaW4=' },
    })
    assert.equal(basic.statusCode, 401)
  })

  it('revokes the tokens of a user whose password changes', async () => {
    const user = await ctx.createUser('sales')
    assert.equal((await ctx.as(user.token, 'GET', '/auth/me')).statusCode, 200)
    const change = await ctx.as(user.token, 'POST', '/auth/me/password', {
      current_password: user.password,
      new_password: 'a-brand-new-password',
    })
    assert.equal(change.statusCode, 204)
    assert.equal((await ctx.as(user.token, 'GET', '/auth/me')).statusCode, 401)
    const fresh = await ctx.login(user.username, 'a-brand-new-password')
    assert.equal((await ctx.as(fresh, 'GET', '/auth/me')).statusCode, 200)
    const rows = await ctx.auditRows('users', user.id)
    assert.deepEqual(rows.at(-1)?.new_values, { password: 'changed' })
    assert.equal(rows.at(-1)?.username, user.username)
  })

  it('refuses a wrong current password and a short new one, naming the field', async () => {
    const user = await ctx.createUser('management')
    const wrong = await ctx.as(user.token, 'POST', '/auth/me/password', {
      current_password: 'not-my-password',
      new_password: 'a-brand-new-password',
    })
    assert.equal(wrong.statusCode, 400)
    assert.deepEqual(
      problemOf(wrong).errors?.map((error) => error.field),
      ['current_password'],
    )
    const short = await ctx.as(user.token, 'POST', '/auth/me/password', {
      current_password: user.password,
      new_password: 'short',
    })
    assert.equal(short.statusCode, 400)
    assert.deepEqual(
      problemOf(short).errors?.map((error) => error.field),
      ['new_password'],
    )
    assert.equal((await ctx.as(user.token, 'GET', '/auth/me')).statusCode, 200, 'nothing changed')
  })

  it('revokes the tokens of a user who is deactivated, demoted or deleted', async () => {
    for (const change of [{ is_active: false }, { role: 'sales' }, null] as const) {
      const user = await ctx.createUser('management')
      assert.equal((await ctx.as(user.token, 'GET', '/auth/me')).statusCode, 200)
      const response = change
        ? await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, change)
        : await ctx.as(ctx.adminToken, 'DELETE', `/users/${user.id}`)
      assert.ok(response.statusCode === 200 || response.statusCode === 204, response.body)
      assert.equal((await ctx.as(user.token, 'GET', '/auth/me')).statusCode, 401, JSON.stringify(change))
    }
  })

  it('revokes on another instance within 5 seconds', async () => {
    const other = await startRuntime(ctx.config, { embedded: ctx.embedded })
    try {
      const user = await ctx.createUser('sales')
      const onOther = () =>
        checkedInject(other.app, { method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${user.token}` } })
      assert.equal((await onOther()).statusCode, 200, 'the other instance has now cached the user')
      const changedAt = Date.now()
      const response = await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, { is_active: false })
      assert.equal(response.statusCode, 200)
      let status = 200
      while (status === 200 && Date.now() - changedAt < 6000) {
        status = (await onOther()).statusCode
        if (status === 200) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.equal(status, 401)
      assert.ok(Date.now() - changedAt <= 5000, `revoked after ${Date.now() - changedAt} ms`)
    } finally {
      await other.close()
    }
  })
})
