import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

describe('PATCH /auth/me', () => {
  let ctx: TestContext
  let seller: TestUser

  before(async () => {
    ctx = await startTestContext()
    seller = await ctx.createUser('sales', { full_name: 'Ann Lee' })
  })
  after(async () => {
    await ctx?.close()
  })

  it('lets any user set their own language and clock, audited as a change of their user', async () => {
    const response = await ctx.as(seller.token, 'PATCH', '/auth/me', { locale: 'en', time_zone: 'europe/madrid' })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json().locale, 'en')
    assert.equal(response.json().time_zone, 'Europe/Madrid')
    assert.equal(response.json().role, 'sales')
    const me = await ctx.as(seller.token, 'GET', '/auth/me')
    assert.equal(me.json().time_zone, 'Europe/Madrid')
    const [row] = (await ctx.auditRows('users', seller.id)).filter((audit) => audit.action === 'update')
    assert.equal(row?.user_id, seller.id)
    assert.deepEqual(row?.new_values, { locale: 'en', time_zone: 'Europe/Madrid' })

    const back = await ctx.as(seller.token, 'PATCH', '/auth/me', { time_zone: null, full_name: null })
    assert.equal(back.statusCode, 200, back.body)
    assert.equal(back.json().time_zone, null)
    assert.equal(back.json().full_name, null)
  })

  it('refuses an unknown zone, and what only an admin may change, naming the field', async () => {
    const zone = await ctx.as(seller.token, 'PATCH', '/auth/me', { time_zone: 'Mars/Olympus' })
    assert.equal(zone.statusCode, 400)
    assert.deepEqual(
      problemOf(zone).errors?.map((error) => error.field),
      ['time_zone'],
    )
    for (const field of ['role', 'is_active', 'email', 'username']) {
      const value = field === 'is_active' ? false : field === 'role' ? 'admin' : 'x@example.com'
      const refused = await ctx.as(seller.token, 'PATCH', '/auth/me', { [field]: value })
      assert.equal(refused.statusCode, 400, field)
      assert.match(JSON.stringify(problemOf(refused)), new RegExp(field))
    }
    const me = await ctx.as(seller.token, 'GET', '/auth/me')
    assert.equal(me.json().role, 'sales')
    assert.equal(me.json().is_active, true)
  })
})
