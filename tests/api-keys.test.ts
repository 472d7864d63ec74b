import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { ADMIN, problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { uniquePhone } from './helpers/fixtures.js'
import { type Instance, startTwoInstances } from './helpers/instances.js'

const KEY_FORMAT = /^crm_[A-Za-z0-9_-]{43}$/

describe('API keys', () => {
  let ctx: TestContext
  let sales: TestUser
  let clientId: number

  const createKey = async (token: string, body: Record<string, unknown>) => {
    const response = await ctx.as(token, 'POST', '/auth/api-keys', body)
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { id: number; key: string; name: string; scopes: string[]; key_prefix: string }
  }

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      contact_name: 'Key Fixture',
      phone: uniquePhone(),
    })
    clientId = client.json().id
  })
  after(() => ctx.close())

  it('shows a new key once and keeps only its SHA-256', async () => {
    const response = await ctx.as(sales.token, 'POST', '/auth/api-keys', { name: 'nightly sync', scopes: ['read'] })
    assert.equal(response.statusCode, 201, response.body)
    const created = response.json()
    assert.match(created.key, KEY_FORMAT)
    assert.equal(Buffer.from(created.key.slice(4), 'base64url').length, 32)
    assert.equal(response.headers.location, `/auth/api-keys/${created.id}`)
    assert.equal(response.headers['cache-control'], 'no-store')
    assert.deepEqual(created.scopes, ['read'])
    assert.equal(created.user_id, sales.id)
    assert.equal(created.key_prefix, created.key.slice(0, 10))

    const row = await ctx.db.selectFrom('api_keys').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow()
    assert.deepEqual(row.key_hash, createHash('sha256').update(created.key).digest())
    assert.ok(!JSON.stringify(row).includes(created.key.slice(4)), 'the key itself is stored nowhere')

    const listed = await ctx.as(sales.token, 'GET', '/auth/api-keys')
    assert.equal(listed.statusCode, 200)
    assert.deepEqual(
      listed.json().items.map((item: { id: number }) => item.id),
      [created.id],
    )
    assert.ok(!listed.body.includes(created.key.slice(4)), 'a list never shows the key')
    const [audit] = await ctx.auditRows('api_keys', created.id)
    assert.equal(audit?.action, 'create')
    assert.ok(!JSON.stringify(audit).includes(created.key.slice(4)))
    assert.ok(!JSON.stringify(audit).includes('key_hash'))
  })

  it('a read key lists and reads, and is refused any write with 403 insufficient_scope', async () => {
    const { key } = await createKey(sales.token, { name: 'reader', scopes: ['read'] })
    assert.equal((await ctx.as(key, 'GET', '/leads')).statusCode, 200)
    assert.equal((await ctx.as(key, 'GET', '/clients')).statusCode, 200)
    const leadsBefore = await ctx.db.selectFrom('leads').select(sql<number>`count(*)::int`.as('n')).executeTakeFirst()
    const refused = await ctx.as(key, 'POST', '/leads', { client_id: clientId, channel: 'web' })
    assert.equal(refused.statusCode, 403, refused.body)
    assert.equal(problemOf(refused).code, 'insufficient_scope')
    const leadsAfter = await ctx.db.selectFrom('leads').select(sql<number>`count(*)::int`.as('n')).executeTakeFirst()
    assert.deepEqual(leadsAfter, leadsBefore)
    for (const [method, url] of [
      ['PATCH', `/clients/${clientId}`],
      ['DELETE', '/auth/api-keys/1'],
    ] as const) {
      const answer = await ctx.as(key, method, url, method === 'PATCH' ? { address: 'x' } : undefined)
      assert.equal(answer.statusCode, 403, `${method} ${url}`)
    }
  })

  it('a write key acts with its owner’s role, and audit rows and events name the key', async () => {
    const { id, key } = await createKey(sales.token, { name: 'crm sync', scopes: ['read', 'write'] })
    const created = await ctx.as(key, 'POST', '/leads', { client_id: clientId, channel: 'web' })
    assert.equal(created.statusCode, 201, created.body)
    assert.equal(created.json().assigned_to, sales.id, 'a sales owner’s lead defaults to them')
    const [audit] = await ctx.auditRows('leads', created.json().id)
    assert.equal(audit?.user_id, sales.id)
    assert.equal(audit?.username, sales.username)
    assert.equal((audit as unknown as Record<string, unknown>).api_key_id, id)
    assert.equal((audit as unknown as Record<string, unknown>).api_key_name, 'crm sync')
    const event = await ctx.db
      .selectFrom('events')
      .select('actor')
      .where('type', '=', 'lead.created')
      .where('resource_key', '=', `lead:${created.json().id}`)
      .executeTakeFirstOrThrow()
    assert.deepEqual(event.actor, { type: 'api_key', id, name: 'crm sync', user_id: sales.id })

    // The audit log shows the key too.
    const logs = await ctx.as(ctx.adminToken, 'GET', `/audit-logs?table_name=leads&record_id=${created.json().id}`)
    assert.equal(logs.json().items[0].api_key_id, id)
    assert.equal(logs.json().items[0].api_key_name, 'crm sync')

    // Its owner's role: a sales user's key may not manage users.
    assert.equal((await ctx.as(key, 'GET', '/users')).statusCode, 403)
    // A key cannot make keys.
    const minted = await ctx.as(key, 'POST', '/auth/api-keys', { name: 'child', scopes: ['read'] })
    assert.equal(minted.statusCode, 403)
    assert.equal(problemOf(minted).code, 'not_allowed_for_api_keys')
  })

  it('an admin’s write key may not make users, passwords, roles, keys, secrets or integration settings; a token may', async () => {
    const admin = await ctx.createUser('admin')
    const { id: keyId, key } = await createKey(admin.token, { name: 'admin sync', scopes: ['read', 'write'] })
    const other = await createKey(admin.token, { name: 'other', scopes: ['read'] })
    const target = await ctx.createUser('sales')
    const hook = await ctx.as(admin.token, 'POST', '/webhooks', {
      url: 'https://93.184.216.34/hook',
      events: ['*'],
      is_active: false,
    })
    assert.equal(hook.statusCode, 201, hook.body)
    const form = await ctx.as(admin.token, 'POST', '/forms', { name: 'Contact' })
    assert.equal(form.statusCode, 201, form.body)
    const hookId = hook.json().id
    const formId = form.json().id
    const auditCount = async () =>
      Number((await ctx.db.selectFrom('audit_logs').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n)

    const refused: Array<[string, string, unknown?]> = [
      ['POST', '/users', { username: 'backdoor', password: 'a-long-secret', role: 'admin' }],
      ['PATCH', `/users/${admin.id}`, { password: 'another-secret' }],
      ['PATCH', `/users/${target.id}`, { role: 'admin' }],
      ['PATCH', `/users/${target.id}`, { full_name: 'x', role: 'sales' }],
      ['POST', '/auth/me/password', { current_password: admin.password, new_password: 'another-secret' }],
      ['POST', '/auth/api-keys', { name: 'child', scopes: ['read', 'write'] }],
      ['DELETE', `/auth/api-keys/${other.id}`],
      ['POST', '/webhooks', { url: 'https://93.184.216.35/hook', events: ['*'] }],
      ['PATCH', `/webhooks/${hookId}`, { url: 'https://93.184.216.35/hook' }],
      ['POST', `/webhooks/${hookId}/rotate-secret`],
      ['POST', '/forms', { name: 'Spam entrance' }],
      ['PATCH', `/forms/${formId}`, { assign_to: admin.id }],
      ['POST', `/forms/${formId}/rotate-key`],
      ['PUT', '/assignment-rules', { mode: 'round_robin', users: [admin.id] }],
    ]
    const before = await auditCount()
    for (const [method, url, body] of refused) {
      const answer = await ctx.as(key, method, url, body)
      assert.equal(answer.statusCode, 403, `${method} ${url}: ${answer.body}`)
      assert.equal(problemOf(answer).code, 'not_allowed_for_api_keys', `${method} ${url}`)
    }
    assert.equal(await auditCount(), before, 'nothing refused was written')
    assert.equal(
      await ctx.db.selectFrom('users').select('id').where('username', '=', 'backdoor').executeTakeFirst(),
      undefined,
    )
    assert.equal((await ctx.as(other.key, 'GET', '/leads')).statusCode, 200, 'the other key still works')

    // What does not outlast the key stays open to it.
    for (const [method, url, body, status] of [
      ['PATCH', `/users/${target.id}`, { full_name: 'Renamed by a key' }, 200],
      ['PATCH', `/webhooks/${hookId}`, { description: 'by a key' }, 200],
      ['GET', '/assignment-rules', undefined, 200],
      ['GET', '/auth/api-keys', undefined, 200],
    ] as const) {
      const answer = await ctx.as(key, method, url, body)
      assert.equal(answer.statusCode, status, `${method} ${url}: ${answer.body}`)
    }
    const [, renamed] = await ctx.auditRows('users', target.id)
    assert.equal((renamed as unknown as Record<string, unknown>).api_key_id, keyId)

    // A signed-in token may do all of it.
    const allowed: Array<[string, string, unknown, number]> = [
      ['POST', '/users', { username: `made${Date.now()}`, password: 'a-long-secret', role: 'admin' }, 201],
      ['PATCH', `/users/${target.id}`, { role: 'management', password: 'a-new-secret' }, 200],
      ['POST', '/auth/api-keys', { name: 'child', scopes: ['read', 'write'] }, 201],
      ['DELETE', `/auth/api-keys/${other.id}`, undefined, 204],
      ['POST', '/webhooks', { url: 'https://93.184.216.35/hook', events: ['*'], is_active: false }, 201],
      ['PATCH', `/webhooks/${hookId}`, { url: 'https://93.184.216.35/hook' }, 200],
      ['POST', `/webhooks/${hookId}/rotate-secret`, undefined, 200],
      ['POST', '/forms', { name: 'Second' }, 201],
      ['PATCH', `/forms/${formId}`, { assign_to: admin.id }, 200],
      ['POST', `/forms/${formId}/rotate-key`, undefined, 200],
      ['PUT', '/assignment-rules', { mode: 'none', users: [] }, 200],
      ['POST', '/auth/me/password', { current_password: admin.password, new_password: 'another-secret' }, 204],
    ]
    for (const [method, url, body, status] of allowed) {
      const answer = await ctx.as(admin.token, method, url, body)
      assert.equal(answer.statusCode, status, `${method} ${url}: ${answer.body}`)
    }
  })

  it('a read key gets insufficient_scope, not the API key refusal, on a refused route', async () => {
    const { key } = await createKey(ctx.adminToken, { name: 'admin reader', scopes: ['read'] })
    const answer = await ctx.as(key, 'POST', '/users', { username: 'x', password: 'y', role: 'admin' })
    assert.equal(answer.statusCode, 403)
    assert.equal(problemOf(answer).code, 'insufficient_scope')
  })

  it('the OpenAPI document names the refusal on each route that refuses API keys', async () => {
    const document = (await ctx.inject({ method: 'GET', url: '/openapi.json' })).json()
    const refusing = [
      ['/users', 'post'],
      ['/users/{id}', 'patch'],
      ['/auth/me/password', 'post'],
      ['/auth/api-keys', 'post'],
      ['/auth/api-keys/{id}', 'delete'],
      ['/webhooks', 'post'],
      ['/webhooks/{id}', 'patch'],
      ['/webhooks/{id}/rotate-secret', 'post'],
      ['/forms', 'post'],
      ['/forms/{id}', 'patch'],
      ['/forms/{id}/rotate-key', 'post'],
      ['/assignment-rules', 'put'],
    ]
    for (const [path, method] of refusing) {
      const operation = document.paths[path as string][method as string]
      assert.match(operation.description, /403 not_allowed_for_api_keys/, `${method} ${path}`)
      assert.ok(operation.responses['403'], `${method} ${path}`)
    }
    assert.doesNotMatch(document.paths['/users/{id}'].get.description ?? '', /not_allowed_for_api_keys/)
    assert.doesNotMatch(document.paths['/webhooks/{id}'].delete.description ?? '', /not_allowed_for_api_keys/)
  })

  it('an expired key is 401; an expiry in the past is refused when the key is made', async () => {
    const { id, key } = await createKey(sales.token, {
      name: 'short-lived',
      scopes: ['read'],
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    })
    assert.equal((await ctx.as(key, 'GET', '/leads')).statusCode, 200)
    await ctx.db
      .updateTable('api_keys')
      .set({ expires_at: sql`now() - interval '1 second'` })
      .where('id', '=', id)
      .execute()
    const expired = await ctx.as(key, 'GET', '/leads')
    assert.equal(expired.statusCode, 401)
    assert.match(problemOf(expired).detail, /expired/)

    const past = await ctx.as(sales.token, 'POST', '/auth/api-keys', {
      name: 'late',
      scopes: ['read'],
      expires_at: '2020-01-01T00:00:00Z',
    })
    assert.equal(past.statusCode, 400)
    assert.equal(problemOf(past).errors?.[0]?.field, 'expires_at')
    const writeOnly = await ctx.as(sales.token, 'POST', '/auth/api-keys', { name: 'w', scopes: ['write'] })
    assert.equal(writeOnly.statusCode, 400)
    assert.equal(problemOf(writeOnly).errors?.[0]?.field, 'scopes')
  })

  it('refuses unknown keys, and the keys of a deactivated or deleted owner', async () => {
    assert.equal((await ctx.as(`crm_${'A'.repeat(43)}`, 'GET', '/leads')).statusCode, 401)
    const owner = await ctx.createUser('management')
    const { key } = await createKey(owner.token, { name: 'owner goes', scopes: ['read'] })
    assert.equal((await ctx.as(key, 'GET', '/leads')).statusCode, 200)
    await ctx.as(ctx.adminToken, 'PATCH', `/users/${owner.id}`, { is_active: false })
    assert.equal((await ctx.as(key, 'GET', '/leads')).statusCode, 401)
    await ctx.as(ctx.adminToken, 'PATCH', `/users/${owner.id}`, { is_active: true })
    assert.equal((await ctx.as(key, 'GET', '/leads')).statusCode, 200)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/users/${owner.id}`)).statusCode, 204)
    assert.equal((await ctx.as(key, 'GET', '/leads')).statusCode, 401)
  })

  it('writes last_used_at at most once a minute per key', async () => {
    const { id, key } = await createKey(sales.token, { name: 'usage', scopes: ['read'] })
    const lastUsed = async () =>
      (await ctx.db.selectFrom('api_keys').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow())
        .last_used_at
    assert.equal(await lastUsed(), null)
    await ctx.as(key, 'GET', '/leads')
    const first = await lastUsed()
    assert.ok(first instanceof Date)
    await ctx.as(key, 'GET', '/leads')
    assert.deepEqual(await lastUsed(), first, 'a second use within the minute writes nothing')
    // A refused write is a use too, and an old mark is renewed.
    await ctx.db
      .updateTable('api_keys')
      .set({ last_used_at: sql`now() - interval '2 minutes'` })
      .where('id', '=', id)
      .execute()
    const markedOld = await lastUsed()
    await ctx.as(key, 'GET', '/clients')
    assert.ok(((await lastUsed()) as Date).getTime() > (markedOld as Date).getTime())
  })

  it('lists your own keys; admins see and revoke everyone’s, others may not', async () => {
    const other = await ctx.createUser('sales')
    const mine = await createKey(other.token, { name: 'mine', scopes: ['read'] })
    const theirs = await createKey(sales.token, { name: 'theirs', scopes: ['read'] })
    const own = await ctx.as(other.token, 'GET', '/auth/api-keys')
    assert.deepEqual(
      own.json().items.map((item: { id: number }) => item.id),
      [mine.id],
    )
    assert.equal((await ctx.as(other.token, 'GET', '/auth/api-keys?all=true')).statusCode, 403)
    const all = await ctx.as(ctx.adminToken, 'GET', '/auth/api-keys?all=true')
    const ids = all.json().items.map((item: { id: number }) => item.id)
    assert.ok(ids.includes(mine.id) && ids.includes(theirs.id))

    assert.equal((await ctx.as(other.token, 'DELETE', `/auth/api-keys/${theirs.id}`)).statusCode, 403)
    assert.equal((await ctx.as(theirs.key, 'GET', '/leads')).statusCode, 200, 'the refused revocation changed nothing')
    assert.equal((await ctx.as(other.token, 'DELETE', `/auth/api-keys/${mine.id}`)).statusCode, 204)
    assert.equal((await ctx.as(mine.key, 'GET', '/leads')).statusCode, 401)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/auth/api-keys/${theirs.id}`)).statusCode, 204)
    assert.equal((await ctx.as(theirs.key, 'GET', '/leads')).statusCode, 401)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/auth/api-keys/${theirs.id}`)).statusCode, 404)
    const [, revoked] = await ctx.auditRows('api_keys', theirs.id)
    assert.equal(revoked?.action, 'delete')
    assert.equal(revoked?.username, ADMIN.username)
  })

  it('the OpenAPI document describes both kinds of bearer credential', async () => {
    const document = (await ctx.inject({ method: 'GET', url: '/openapi.json' })).json()
    const schemes = document.components.securitySchemes
    assert.equal(schemes.bearerAuth.bearerFormat, 'JWT')
    assert.equal(schemes.apiKey.scheme, 'bearer')
    assert.match(schemes.apiKey.description, /crm_/)
    assert.ok(document.security.some((entry: Record<string, unknown>) => 'apiKey' in entry))
  })
})

describe('API key revocation on two instances', () => {
  let instances: [Instance, Instance]
  let close: () => Promise<void>

  before(async () => {
    ;({ instances, close } = await startTwoInstances())
  })
  after(() => close?.())

  it('a revoked key is refused on the very next request, on the other instance too', async () => {
    const [first, second] = instances
    const login = await first.request('POST', '/auth/login', ADMIN)
    const token = login.body.access_token as string
    const created = await first.request('POST', '/auth/api-keys', { name: 'two instances', scopes: ['read'] }, token)
    assert.equal(created.status, 201)
    const key = created.body.key as string
    assert.equal((await second.request('GET', '/clients', undefined, key)).status, 200)
    assert.equal((await first.request('DELETE', `/auth/api-keys/${created.body.id}`, undefined, token)).status, 204)
    assert.equal((await second.request('GET', '/clients', undefined, key)).status, 401)
    assert.equal((await first.request('GET', '/clients', undefined, key)).status, 401)
  })
})
