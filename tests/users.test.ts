import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { startRuntime } from '../src/runtime.js'
import { countRows, problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { checkedInject } from './helpers/contract.js'

describe('users', () => {
  let ctx: TestContext
  let sales: TestUser
  let management: TestUser

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
  })
  after(() => ctx?.close())

  it('is admin-only on every verb: 401 anonymous, 403 for sales and management', async () => {
    const calls = [
      ['GET', '/users'],
      ['POST', '/users', { username: 'someone', password: 'long-enough-pw', role: 'sales' }],
      ['GET', `/users/${sales.id}`],
      ['PATCH', `/users/${sales.id}`, { full_name: 'Changed' }],
      ['DELETE', `/users/${sales.id}`],
      ['GET', '/audit-logs'],
    ] as const
    for (const [method, url, body] of calls) {
      assert.equal((await ctx.as(undefined, method, url, body)).statusCode, 401, `${method} ${url} anonymous`)
      for (const user of [sales, management]) {
        const response = await ctx.as(user.token, method, url, body)
        assert.equal(response.statusCode, 403, `${method} ${url} as ${user.role}`)
        assert.equal(problemOf(response).code, 'forbidden')
      }
    }
    const unchanged = await ctx.as(ctx.adminToken, 'GET', `/users/${sales.id}`)
    assert.equal(unchanged.json().full_name, null)
  })

  it('creates a user: 201, Location, lower-case username, no hash, one audit row', async () => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/users', {
      username: 'Maria.Gomez',
      password: 'a-long-secret',
      role: 'sales',
      email: 'Maria@Example.com',
      full_name: 'María Gómez',
    })
    assert.equal(response.statusCode, 201, response.body)
    const user = response.json()
    assert.equal(response.headers.location, `/users/${user.id}`)
    assert.equal(user.username, 'maria.gomez')
    assert.equal(user.email, 'maria@example.com')
    assert.equal(user.is_active, true)
    assert.equal(user.last_login_at, null)
    assert.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.doesNotMatch(response.body, /argon2|password/)

    const rows = await ctx.auditRows('users', user.id)
    assert.equal(rows.length, 1)
    assert.equal(rows[0]?.action, 'create')
    assert.equal(rows[0]?.old_values, null)
    assert.equal(rows[0]?.new_values?.username, 'maria.gomez')
    assert.equal(rows[0]?.new_values?.password_hash, undefined)
    assert.doesNotMatch(JSON.stringify(rows[0]), /argon2/)
    assert.equal(rows[0]?.username, 'admin')
    assert.equal(rows[0]?.request_id, response.headers['x-request-id'])
    assert.equal(await ctx.login('MARIA.GOMEZ', 'a-long-secret').then(Boolean), true)
  })

  it('refuses bad usernames and passwords, naming each field', async () => {
    const before = await countRows(ctx.db, 'users')
    for (const username of ['ab', 'has space', 'ñandú', 'x'.repeat(51), '']) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/users', {
        username,
        password: 'long-enough',
        role: 'sales',
      })
      assert.equal(response.statusCode, 400, username)
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        ['username'],
      )
    }
    const several = await ctx.as(ctx.adminToken, 'POST', '/users', {
      username: 'fine.name',
      password: 'short',
      role: 'boss',
      email: 'not-an-email',
    })
    assert.equal(several.statusCode, 400)
    assert.deepEqual(
      problemOf(several)
        .errors?.map((error) => error.field)
        .sort(),
      ['email', 'password', 'role'],
    )
    assert.equal(await countRows(ctx.db, 'users'), before)
  })

  it('refuses a duplicate username, whatever its case, and a duplicate email, with 409', async () => {
    const first = await ctx.as(ctx.adminToken, 'POST', '/users', {
      username: 'duplicated',
      password: 'long-enough',
      role: 'sales',
      email: 'dup@example.com',
    })
    assert.equal(first.statusCode, 201)
    const auditBefore = await countRows(ctx.db, 'audit_logs')
    const sameName = await ctx.as(ctx.adminToken, 'POST', '/users', {
      username: 'DUPLICATED',
      password: 'long-enough',
      role: 'sales',
    })
    assert.equal(sameName.statusCode, 409)
    assert.equal(problemOf(sameName).code, 'username_taken')
    const sameEmail = await ctx.as(ctx.adminToken, 'POST', '/users', {
      username: 'another.one',
      password: 'long-enough',
      role: 'sales',
      email: 'DUP@example.com',
    })
    assert.equal(sameEmail.statusCode, 409)
    assert.equal(problemOf(sameEmail).code, 'email_taken')
    const rename = await ctx.as(ctx.adminToken, 'PATCH', `/users/${sales.id}`, { username: 'Duplicated' })
    assert.equal(rename.statusCode, 409)
    assert.equal(await countRows(ctx.db, 'audit_logs'), auditBefore, 'refused changes leave no audit row')
  })

  it('updates with one audit row of the changed fields only; a no-op PATCH writes nothing', async () => {
    const user = await ctx.createUser('sales', { full_name: 'Ana' })
    const before = (await ctx.as(ctx.adminToken, 'GET', `/users/${user.id}`)).json()
    const patch = await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, {
      full_name: 'Ana Pérez',
      role: 'sales',
      email: null,
    })
    assert.equal(patch.statusCode, 200)
    assert.equal(patch.json().full_name, 'Ana Pérez')
    let rows = await ctx.auditRows('users', user.id)
    assert.equal(rows.length, 2)
    assert.equal(rows[1]?.action, 'update')
    assert.deepEqual(rows[1]?.old_values, { full_name: 'Ana' })
    assert.deepEqual(rows[1]?.new_values, { full_name: 'Ana Pérez' })
    assert.notEqual(patch.json().updated_at, before.updated_at)

    const noop = await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, { full_name: 'Ana Pérez', role: 'sales' })
    assert.equal(noop.statusCode, 200)
    assert.equal(noop.json().updated_at, patch.json().updated_at)
    const empty = await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, {})
    assert.equal(empty.statusCode, 200)
    rows = await ctx.auditRows('users', user.id)
    assert.equal(rows.length, 2, 'no audit row for a PATCH that changes nothing')
    assert.equal((await ctx.as(user.token, 'GET', '/auth/me')).statusCode, 200, 'a no-op revokes nothing')

    const password = await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, { password: 'another-password' })
    assert.equal(password.statusCode, 200)
    rows = await ctx.auditRows('users', user.id)
    assert.deepEqual(rows.at(-1)?.new_values, { password: 'changed' })
    assert.doesNotMatch(JSON.stringify(rows), /argon2/)
  })

  it('leaves neither change nor audit row when an update fails half-way', async () => {
    const user = await ctx.createUser('sales', { full_name: 'Before' })
    const auditBefore = await countRows(ctx.db, 'audit_logs')
    // Refuse every audit insert for a moment: the user update before it must roll back too.
    await sql`create function refuse_audit() returns trigger language plpgsql as $$ begin raise exception 'audit refused'; end $$`.execute(
      ctx.db,
    )
    await sql`create trigger refuse_audit before insert on audit_logs for each row execute function refuse_audit()`.execute(
      ctx.db,
    )
    try {
      const response = await ctx.injectUnchecked('a 500, which no operation documents, is forced here', {
        method: 'PATCH',
        url: `/users/${user.id}`,
        headers: { authorization: `Bearer ${ctx.adminToken}` },
        payload: { full_name: 'After' },
      })
      assert.equal(response.statusCode, 500)
      assert.doesNotMatch(response.body, /audit refused|stack|at /)
    } finally {
      await sql`drop trigger refuse_audit on audit_logs`.execute(ctx.db)
      await sql`drop function refuse_audit()`.execute(ctx.db)
    }
    const after = await ctx.as(ctx.adminToken, 'GET', `/users/${user.id}`)
    assert.equal(after.json().full_name, 'Before')
    assert.equal(await countRows(ctx.db, 'audit_logs'), auditBefore)
  })

  it('keeps the last active admin: no deletion, deactivation or demotion (409 last_admin)', async () => {
    const activeAdmins = async () => (await ctx.as(ctx.adminToken, 'GET', '/users?role=admin&is_active=true')).json()
    assert.equal((await activeAdmins()).total, 1)
    const adminId = (await activeAdmins()).items[0].id

    const selfDeactivate = await ctx.as(ctx.adminToken, 'PATCH', `/users/${adminId}`, { is_active: false })
    assert.equal(selfDeactivate.statusCode, 409)
    assert.equal(problemOf(selfDeactivate).code, 'cannot_deactivate_self')
    const selfDelete = await ctx.as(ctx.adminToken, 'DELETE', `/users/${adminId}`)
    assert.equal(selfDelete.statusCode, 409)
    assert.equal(problemOf(selfDelete).code, 'cannot_delete_self')
    const selfDemote = await ctx.as(ctx.adminToken, 'PATCH', `/users/${adminId}`, { role: 'management' })
    assert.equal(selfDemote.statusCode, 409)
    assert.equal(problemOf(selfDemote).code, 'last_admin')

    // A second instance that still trusts a token for up to AUTH_CACHE_MS: whatever the tokens
    // say, the database keeps one active admin.
    const other = await startRuntime(ctx.config, { embedded: ctx.embedded })
    try {
      const viaOther = (token: string, method: 'PATCH' | 'DELETE', url: string, body?: object) =>
        checkedInject(other.app, {
          method,
          url,
          headers: { authorization: `Bearer ${token}` },
          ...(body && { payload: body }),
        })
      for (const [method, body] of [
        ['PATCH', { is_active: false }],
        ['DELETE', undefined],
      ] as const) {
        const second = await ctx.createUser('admin')
        assert.equal((await viaOther(second.token, 'PATCH', `/users/${sales.id}`, {})).statusCode, 200)
        const first = await ctx.as(ctx.adminToken, method, `/users/${second.id}`, body)
        assert.ok([200, 204].includes(first.statusCode), first.body)
        const refused = await viaOther(second.token, method, `/users/${adminId}`, body)
        assert.equal(refused.statusCode, 409, refused.body)
        assert.equal(problemOf(refused).code, 'last_admin')
        assert.equal((await activeAdmins()).total, 1)
      }
    } finally {
      await other.close()
    }
  })

  it('lists with filters, q, sort and pagination', async () => {
    const page = await ctx.as(ctx.adminToken, 'GET', '/users?role=management&sort=-username&limit=1')
    assert.equal(page.statusCode, 200)
    const body = page.json()
    assert.equal(body.limit, 1)
    assert.equal(body.offset, 0)
    assert.equal(body.items.length, 1)
    const all = await ctx.db.selectFrom('users').select('username').where('role', '=', 'management').execute()
    assert.equal(body.total, all.length)
    assert.equal(
      body.items[0].username,
      all
        .map((user) => user.username)
        .sort()
        .at(-1),
    )
    const byQ = await ctx.as(ctx.adminToken, 'GET', `/users?q=${encodeURIComponent(sales.username.toUpperCase())}`)
    assert.deepEqual(
      byQ.json().items.map((user: { id: number }) => user.id),
      [sales.id],
    )
    for (const query of ['limit=201', 'limit=0', 'offset=-1', 'sort=password_hash', 'role=boss', 'unknown=1']) {
      const response = await ctx.as(ctx.adminToken, 'GET', `/users?${query}`)
      assert.equal(response.statusCode, 400, query)
      assert.equal(problemOf(response).errors?.[0]?.field, query.split('=')[0])
    }
    assert.equal((await ctx.as(ctx.adminToken, 'GET', '/users/999999')).statusCode, 404)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', '/users/0')).statusCode, 400)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', '/users/abc')).statusCode, 400)
  })

  it('deletes with one audit row holding the whole row, and keeps the rows that user wrote', async () => {
    const doomed = await ctx.createUser('admin')
    const created = await ctx.as(doomed.token, 'POST', '/users', {
      username: 'made.by.doomed',
      password: 'long-enough',
      role: 'sales',
    })
    assert.equal(created.statusCode, 201)
    const response = await ctx.as(ctx.adminToken, 'DELETE', `/users/${doomed.id}`)
    assert.equal(response.statusCode, 204)
    assert.equal(response.body, '')
    const rows = await ctx.auditRows('users', doomed.id)
    assert.equal(rows.at(-1)?.action, 'delete')
    assert.equal(rows.at(-1)?.old_values?.username, doomed.username)
    assert.equal(rows.at(-1)?.new_values, null)
    const written = await ctx.auditRows('users', created.json().id)
    assert.equal(written[0]?.user_id, doomed.id)
    assert.equal(written[0]?.username, doomed.username)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/users/${doomed.id}`)).statusCode, 404)
  })

  it('has an append-only audit log: the database refuses UPDATE, DELETE and TRUNCATE', async () => {
    const before = await countRows(ctx.db, 'audit_logs')
    for (const statement of [
      sql`update audit_logs set username = 'someone else'`,
      sql`delete from audit_logs`,
      sql`truncate audit_logs`,
    ]) {
      await assert.rejects(statement.execute(ctx.db), /append-only/)
    }
    assert.equal(await countRows(ctx.db, 'audit_logs'), before)
  })

  it('lets admins read the audit log with filters, newest first', async () => {
    const user = await ctx.createUser('sales')
    await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, { full_name: 'Filtered' })
    const response = await ctx.as(ctx.adminToken, 'GET', `/audit-logs?table_name=users&record_id=${user.id}`)
    assert.equal(response.statusCode, 200)
    const body = response.json()
    assert.equal(body.total, 2)
    assert.deepEqual(
      body.items.map((row: { action: string }) => row.action),
      ['update', 'create'],
    )
    const updates = await ctx.as(
      ctx.adminToken,
      'GET',
      `/audit-logs?action=update&record_id=${user.id}&from=2000-01-01T00:00:00Z`,
    )
    assert.equal(updates.json().total, 1)
    const future = await ctx.as(ctx.adminToken, 'GET', '/audit-logs?from=2999-01-01T00:00:00Z')
    assert.equal(future.json().total, 0)
    const leapSecond = await ctx.as(ctx.adminToken, 'GET', '/audit-logs?to=2026-12-31T23:59:60Z')
    assert.equal(leapSecond.statusCode, 400)
    assert.equal(problemOf(leapSecond).errors?.[0]?.field, 'to')
    const bad = await ctx.as(ctx.adminToken, 'GET', '/audit-logs?from=yesterday')
    assert.equal(bad.statusCode, 400)
    assert.equal(problemOf(bad).errors?.[0]?.field, 'from')
  })
})

describe('DEFAULT_LOCALE', () => {
  it('is the language of the first admin and of users created without one', async () => {
    const ctx = await startTestContext({ DEFAULT_LOCALE: 'en' })
    try {
      const me = await ctx.as(ctx.adminToken, 'GET', '/auth/me')
      assert.equal(me.json().locale, 'en')
      const created = await ctx.as(ctx.adminToken, 'POST', '/users', {
        username: 'new.seller',
        password: 'long-enough-pw',
        role: 'sales',
      })
      assert.equal(created.json().locale, 'en')
    } finally {
      await ctx.close()
    }
  })
})
