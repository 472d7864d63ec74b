import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { viaActor } from '../src/auth/actor.js'
import { receiveInbound } from '../src/inbound/service.js'
import { startTestContext, type TestContext } from './helpers/context.js'

describe('inbound contacts', () => {
  let ctx: TestContext
  const actor = viaActor({ type: 'form', id: 1, name: 'Contacto' })
  const rules = { defaultPhoneRegion: 'VE' as const }

  const receive = (phones: string[], body: string) =>
    ctx.db
      .transaction()
      .execute((trx) =>
        receiveInbound(
          trx,
          actor,
          { phones, name: 'María Núñez' },
          { channel: 'whatsapp', activity: { type: 'form', body } },
          rules,
        ),
      )

  before(async () => {
    // The second of two simultaneous contacts waits for the first (on the embedded database, for its
    // one connection), however slow a loaded machine makes the first one.
    ctx = await startTestContext({ DB_CONNECT_TIMEOUT_MS: '15000' })
  })
  after(() => ctx.close())

  it('gives two simultaneous first contacts from one new number one client and one lead', async () => {
    // The same line under both of its forms, the number to store first (as WhatsApp passes them); the
    // locks are taken in one order whatever the order of the list.
    const results = await Promise.all([
      receive(['+5511987654321', '+551187654321'], 'uno'),
      receive(['+5511987654321', '+551187654321'], 'dos'),
    ])
    assert.equal(results.filter((result) => result.clientCreated).length, 1)
    assert.equal(results.filter((result) => result.leadCreated).length, 1)
    const clients = await ctx.db.selectFrom('clients').select(['id', 'phone', 'created_by']).execute()
    assert.deepEqual(
      clients.map((client) => [client.phone, client.created_by]),
      [['+5511987654321', null]],
    )
    const leads = await ctx.db.selectFrom('leads').select(['id', 'channel', 'assigned_to']).execute()
    assert.deepEqual(
      leads.map((lead) => [lead.channel, lead.assigned_to]),
      [['whatsapp', null]],
    )
    const activities = await ctx.db.selectFrom('lead_activities').select(['lead_id', 'body', 'created_by']).execute()
    assert.deepEqual(activities.map((activity) => activity.body).sort(), ['dos', 'uno'])

    // Audit rows and events name the form, not a user.
    const audit = await ctx.db
      .selectFrom('audit_logs')
      .select(['table_name', 'user_id', 'username'])
      .where('table_name', '!=', 'users')
      .execute()
    assert.deepEqual(audit.map((row) => `${row.table_name} ${row.user_id} ${row.username}`).sort(), [
      'clients null form:Contacto',
      'lead_activities null form:Contacto',
      'lead_activities null form:Contacto',
      'leads null form:Contacto',
    ])
    const events = await ctx.db
      .selectFrom('events')
      .select(['type', 'actor'])
      .where('type', 'not like', 'user.%')
      .orderBy('id')
      .execute()
    assert.deepEqual(
      events.map((event) => event.type),
      ['client.created', 'lead.created', 'lead.activity_added', 'lead.activity_added'],
    )
    for (const event of events) assert.deepEqual(event.actor, { type: 'form', id: 1, name: 'Contacto' })
  })

  it('finds the client by a variant of its number and reuses its open lead, not a closed one', async () => {
    const first = await receive(['+5511987654321'], 'tres')
    assert.equal(first.leadCreated, false)
    await ctx.db.updateTable('leads').set({ status: 'closed' }).where('id', '=', first.lead.id).execute()
    const second = await receive(['+551187654321', '+5511987654321'], 'cuatro')
    assert.equal(second.client.id, first.client.id)
    assert.equal(second.clientCreated, false)
    assert.equal(second.leadCreated, true)
    assert.notEqual(second.lead.id, first.lead.id)
  })

  it('stores an external id once: a redelivery adds nothing', async () => {
    const message = { channel: 'whatsapp' as const, activity: { type: 'whatsapp' as const, external_id: 'wamid.X1' } }
    const run = () =>
      ctx.db
        .transaction()
        .execute((trx) => receiveInbound(trx, actor, { phones: ['+584141234567'], name: 'Ana' }, message, rules))
    assert.notEqual((await run()).activity, null)
    assert.equal((await run()).activity, null)
    const rows = await ctx.db.selectFrom('lead_activities').select('id').where('external_id', '=', 'wamid.X1').execute()
    assert.equal(rows.length, 1)
  })
})
