import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { viaActor } from '../src/auth/actor.js'
import { receiveInbound } from '../src/inbound/service.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { uniquePhone } from './helpers/fixtures.js'

describe('assignment rules', () => {
  let ctx: TestContext
  let sellers: TestUser[]

  /** A contact from a new number, filed as a web form would. */
  const inboundLead = async (preferredAssignee: number | null = null) => {
    const result = await ctx.db
      .transaction()
      .execute((trx) =>
        receiveInbound(
          trx,
          viaActor({ type: 'form', id: 1, name: 'Contacto' }),
          { phones: [uniquePhone()], name: 'Cliente' },
          { channel: 'web', preferredAssignee, activity: { type: 'form' } },
          { defaultPhoneRegion: 'VE' },
        ),
      )
    return result.lead.assigned_to
  }

  before(async () => {
    ctx = await startTestContext()
    sellers = [await ctx.createUser('sales'), await ctx.createUser('sales'), await ctx.createUser('sales')]
  })
  after(() => ctx.close())

  it('starts with none, and replaces the rules with an audit row', async () => {
    const initial = await ctx.as(ctx.adminToken, 'GET', '/assignment-rules')
    assert.deepEqual(initial.json(), { mode: 'none', users: [] })
    assert.equal(await inboundLead(), null)

    const rules = { mode: 'round_robin', users: sellers.map((seller) => seller.id) }
    const put = await ctx.as(ctx.adminToken, 'PUT', '/assignment-rules', rules)
    assert.equal(put.statusCode, 200, put.body)
    assert.deepEqual(put.json(), rules)
    assert.deepEqual((await ctx.as(ctx.adminToken, 'GET', '/assignment-rules')).json(), rules)
    // The same rules again change nothing.
    await ctx.as(ctx.adminToken, 'PUT', '/assignment-rules', rules)
    const audit = await ctx.auditRows('assignment_rules')
    assert.deepEqual(
      audit.map((row) => [row.record_id, row.old_values, row.new_values]),
      [[1, { mode: 'none', users: [] }, rules]],
    )
  })

  it('refuses unknown users and an empty rotation, naming the field', async () => {
    for (const [body, field] of [
      [{ mode: 'round_robin', users: [sellers[0]?.id, 999_999] }, 'users.1'],
      [{ mode: 'round_robin', users: [] }, 'users'],
      [{ mode: 'round_robin', users: [1, 1] }, 'users'],
      [{ mode: 'sometimes', users: [] }, 'mode'],
    ] as const) {
      const response = await ctx.as(ctx.adminToken, 'PUT', '/assignment-rules', body)
      assert.equal(response.statusCode, 400, JSON.stringify(body))
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        [field],
      )
    }
  })

  it('hands leads out in turn, skipping inactive users, and a form’s own assignee first', async () => {
    const [first, second, third] = sellers.map((seller) => seller.id) as [number, number, number]
    const turns = [await inboundLead(), await inboundLead(), await inboundLead(), await inboundLead()]
    assert.deepEqual(turns, [first, second, third, first])
    await ctx.as(ctx.adminToken, 'PATCH', `/users/${second}`, { is_active: false })
    assert.deepEqual([await inboundLead(), await inboundLead()], [third, first])
    // A preferred assignee takes the lead without moving the rotation; an inactive one does not.
    assert.equal(await inboundLead(third), third)
    assert.equal(await inboundLead(second), third)
    await ctx.as(ctx.adminToken, 'PATCH', `/users/${third}`, { is_active: false })
    await ctx.as(ctx.adminToken, 'PATCH', `/users/${first}`, { is_active: false })
    assert.equal(await inboundLead(), null)
  })
})
