import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import {
  ACTIVITY_DIRECTIONS,
  ACTIVITY_TYPES,
  ASSIGNMENT_MODES,
  AUDIT_ACTIONS,
  AUDITED_TABLES,
  CLIENT_TYPES,
  LEAD_CHANNELS,
  LEAD_STATUSES,
  USER_ROLES,
  VIEW_RESOURCES,
} from '../src/db/enums.js'
import { problemOf, startTestContext, type TestContext } from './helpers/context.js'

describe('HTTP conventions', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext({ BODY_LIMIT_BYTES: '2048', CORS_ORIGINS: 'https://crm.example.com' })
  })
  after(() => ctx?.close())

  const post = (payload: string, contentType = 'application/json') =>
    ctx.inject({
      method: 'POST',
      url: '/users',
      headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': contentType },
      payload,
    })

  it('lists each database enum type once, in the database’s order, for the schemas and the seed', async () => {
    const lists: Array<[string, readonly string[]]> = [
      ['user_role', USER_ROLES],
      ['client_type', CLIENT_TYPES],
      ['lead_status', LEAD_STATUSES],
      ['lead_channel', LEAD_CHANNELS],
      ['audit_action', AUDIT_ACTIONS],
      ['audited_table', AUDITED_TABLES],
      ['activity_type', ACTIVITY_TYPES],
      ['activity_direction', ACTIVITY_DIRECTIONS],
      ['assignment_mode', ASSIGNMENT_MODES],
      ['view_resource', VIEW_RESOURCES],
    ]
    for (const [type, list] of lists) {
      const result = await sql<{
        value: string
      }>`select unnest(enum_range(null::${sql.raw(type)}))::text as value`.execute(ctx.db)
      assert.deepEqual(
        list,
        result.rows.map((row) => row.value),
        type,
      )
    }
  })

  it('answers a bad body with problem+json, a code and one error per bad field', async () => {
    const response = await post(JSON.stringify({ username: 'x', role: 'nope', password: 7, extra: true }))
    assert.equal(response.statusCode, 400)
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
    const problem = problemOf(response)
    assert.equal(problem.type, 'about:blank')
    assert.equal(problem.title, 'Bad Request')
    assert.equal(problem.status, 400)
    assert.equal(problem.code, 'validation_failed')
    assert.equal(problem.request_id, response.headers['x-request-id'])
    assert.deepEqual(problem.errors?.map((error) => error.field).sort(), ['extra', 'password', 'role', 'username'])
    for (const error of problem.errors ?? []) assert.ok(error.message.length > 0)
  })

  it('refuses unknown fields rather than ignoring them', async () => {
    const response = await post(
      JSON.stringify({ username: 'fine.name', password: 'long-enough', role: 'sales', admin: true }),
    )
    assert.equal(response.statusCode, 400)
    assert.deepEqual(problemOf(response).errors, [{ field: 'admin', message: 'is not an accepted field' }])
  })

  it('answers malformed JSON with 400 malformed_json', async () => {
    const response = await post('{"username": "a",')
    assert.equal(response.statusCode, 400)
    assert.equal(problemOf(response).code, 'malformed_json')
  })

  it('answers a missing body with 400 naming it', async () => {
    const response = await post('')
    assert.equal(response.statusCode, 400)
    assert.equal(problemOf(response).code, 'validation_failed')
  })

  it('answers a body over the limit with 413 and a wrong content type with 415', async () => {
    const big = await post(JSON.stringify({ username: 'x'.repeat(4096), password: 'long-enough', role: 'sales' }))
    assert.equal(big.statusCode, 413)
    assert.equal(problemOf(big).code, 'body_too_large')
    const text = await post('username=a', 'text/plain')
    assert.equal(text.statusCode, 415)
    assert.equal(problemOf(text).code, 'unsupported_media_type')
    const form = await post('username=fine.name&password=long-enough&role=sales', 'application/x-www-form-urlencoded')
    assert.equal(form.statusCode, 415, 'forms are taken by /auth/login only')
  })

  it('answers a malformed URL with problem+json and an X-Request-Id', async () => {
    const response = await ctx.inject({ method: 'GET', url: '/clients/%', headers: { 'x-request-id': 'bad-url-1' } })
    assert.equal(response.statusCode, 400)
    assert.equal(problemOf(response).code, 'malformed_url')
    assert.equal(response.headers['x-request-id'], 'bad-url-1')
  })

  it('answers an unknown route with a problem+json 404', async () => {
    const response = await ctx.inject({ method: 'GET', url: '/nowhere' })
    assert.equal(response.statusCode, 404)
    assert.equal(problemOf(response).code, 'not_found')
  })

  it('answers a known path with the wrong method with 405 and Allow, as problem+json', async () => {
    const login = await ctx.inject({ method: 'GET', url: '/auth/login' })
    assert.equal(login.statusCode, 405)
    // OPTIONS too, since CORS is on here.
    assert.equal(login.headers.allow, 'POST, OPTIONS')
    assert.equal(problemOf(login).code, 'method_not_allowed')
    assert.match(String(login.headers['content-type']), /^application\/problem\+json/)
    const client = await ctx.as(ctx.adminToken, 'PUT', '/clients/1', {})
    assert.equal(client.statusCode, 405)
    assert.equal(client.headers.allow, 'GET, HEAD, PATCH, DELETE, OPTIONS')
    assert.equal((await ctx.inject({ method: 'DELETE', url: '/nowhere' })).statusCode, 404)
  })

  it('answers oversized headers with a problem+json 431 on a real socket', async () => {
    const address = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
    try {
      const { port } = new URL(address)
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(`GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
        })
        let answer = ''
        socket.on('data', (chunk) => {
          answer += chunk.toString()
        })
        socket.on('close', () => resolve(answer))
        socket.on('error', reject)
      })
      const [head = '', body = ''] = raw.split('\r\n\r\n')
      assert.match(head, /^HTTP\/1\.1 431 /)
      assert.match(head, /content-type: application\/problem\+json/i)
      assert.equal(JSON.parse(body).code, 'headers_too_large')
      assert.equal(JSON.parse(body).status, 431)
    } finally {
      await ctx.app.server.close()
    }
  })

  it('echoes a sane X-Request-Id and replaces an insane one', async () => {
    const sane = await ctx.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-123.def' } })
    assert.equal(sane.headers['x-request-id'], 'abc-123.def')
    const insane = await ctx.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'a b<script>' } })
    assert.match(String(insane.headers['x-request-id']), /^[0-9a-f-]{36}$/)
    const generated = await ctx.inject({ method: 'GET', url: '/health' })
    assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/)
    assert.notEqual(generated.headers['x-request-id'], insane.headers['x-request-id'])
  })

  it('sends security headers, and CORS only to the configured origins', async () => {
    const allowed = await ctx.inject({ method: 'GET', url: '/health', headers: { origin: 'https://crm.example.com' } })
    assert.equal(allowed.headers['x-content-type-options'], 'nosniff')
    assert.ok(allowed.headers['content-security-policy'])
    assert.ok(allowed.headers['strict-transport-security'])
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://crm.example.com')
    const other = await ctx.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example.com' } })
    assert.equal(other.headers['access-control-allow-origin'], undefined)
    // A web form answers CORS for its own origins only, not for the API's.
    const form = await ctx.inject({
      method: 'OPTIONS',
      url: '/f/no-such-key',
      headers: { origin: 'https://crm.example.com', 'access-control-request-method': 'POST' },
    })
    assert.ok(form.statusCode >= 400, `preflight of an unknown form: ${form.statusCode}`)
    assert.equal(form.headers['access-control-allow-origin'], undefined)
  })

  it('answers /health and /ready without a token', async () => {
    assert.deepEqual((await ctx.inject({ method: 'GET', url: '/health' })).json(), { status: 'ok' })
    assert.deepEqual((await ctx.inject({ method: 'GET', url: '/ready' })).json(), { status: 'ok' })
  })

  it('answers GET / without a token with links to the docs, the OpenAPI document and the dashboard', async () => {
    const response = await ctx.inject({ method: 'GET', url: '/' })
    assert.equal(response.statusCode, 200)
    const index = response.json()
    assert.equal(index.name, 'Mini CRM API')
    assert.match(index.version, /^\d+\.\d+\.\d+/)
    assert.deepEqual(
      { docs: index.docs, openapi: index.openapi, dashboard: index.dashboard, health: index.health },
      { docs: '/docs', openapi: '/openapi.json', dashboard: '/dashboard', health: '/health' },
    )
    for (const path of [index.docs, index.openapi, index.health]) {
      assert.ok((await ctx.inject({ method: 'GET', url: path })).statusCode < 400, path)
    }
  })

  it('challenges a request without a valid bearer token with WWW-Authenticate', async () => {
    const missing = await ctx.inject({ method: 'GET', url: '/auth/me' })
    assert.equal(missing.statusCode, 401)
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="Mini CRM API"')
    const refused = await ctx.inject({ method: 'GET', url: '/clients', headers: { authorization: 'Bearer nonsense' } })
    assert.equal(refused.statusCode, 401)
    assert.equal(refused.headers['www-authenticate'], 'Bearer realm="Mini CRM API", error="invalid_token"')
    const key = await ctx.inject({
      method: 'GET',
      url: '/clients',
      headers: { authorization: `Bearer crm_${'x'.repeat(43)}` },
    })
    assert.equal(key.statusCode, 401)
    assert.equal(key.headers['www-authenticate'], 'Bearer realm="Mini CRM API", error="invalid_token"')
    // A wrong password is not a token to challenge.
    const login = await ctx.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: 'admin', password: 'wrong-password' },
    })
    assert.equal(login.statusCode, 401)
    assert.equal(login.headers['www-authenticate'], undefined)
  })
})

describe('CORS off by default', () => {
  let ctx: TestContext
  before(async () => {
    ctx = await startTestContext()
  })
  after(() => ctx?.close())

  it('sends no CORS header when CORS_ORIGINS is empty', async () => {
    const response = await ctx.inject({ method: 'GET', url: '/health', headers: { origin: 'https://crm.example.com' } })
    assert.equal(response.headers['access-control-allow-origin'], undefined)
  })
})
