import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { Webhook } from 'standardwebhooks'
import { buildApp } from '../src/app.js'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import { purgeOldEvents } from '../src/events/retention.js'
import { createLead } from '../src/leads/commands.js'
import { deliver } from '../src/webhooks/deliver.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { checkedInject } from './helpers/contract.js'
import { uniquePhone } from './helpers/fixtures.js'
import { type ReceivedRequest, type Receiver, startReceiver, waitFor } from './helpers/peers.js'

// Seven attempts, 50 ms apart: the contract's schedule, shortened for the test.
const FAST_RETRIES = '0.05,0.05,0.05,0.05,0.05,0.05'

describe('webhooks', () => {
  let ctx: TestContext
  let receiver: Receiver
  let sales: TestUser
  let management: TestUser
  let clientId: number

  before(async () => {
    ctx = await startTestContext({
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WORKER_POLL_MS: '50',
      JOB_RETRY_DELAYS_SECONDS: FAST_RETRIES,
    })
    receiver = await startReceiver()
    sales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      contact_name: 'Juan Pérez',
      phone: uniquePhone(),
    })
    clientId = client.json().id
  })
  after(async () => {
    await ctx.close()
    await receiver.close()
  })

  /** A webhook to its own path on the receiver, so each test reads only its own requests. */
  const register = async (path: string, events: string[] = ['*']) => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/webhooks', { url: `${receiver.url}/${path}`, events })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { id: number; secret: string; url: string }
  }
  const at = (path: string) => receiver.received.filter((request) => request.path === `/${path}`)
  const createLeadAs = async (token: string, body: Record<string, unknown> = {}) => {
    const response = await ctx.as(token, 'POST', '/leads', { client_id: clientId, channel: 'web', ...body })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { id: number; status: string }
  }
  const allDispatched = () =>
    waitFor('every event fanned out', async () => {
      const waiting = await ctx.db.selectFrom('events').select('id').where('dispatched_at', 'is', null).execute()
      return waiting.length === 0
    })
  const eventCount = async () =>
    Number((await ctx.db.selectFrom('events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n)

  it('delivers a created lead signed, and standardwebhooks verifies it with the secret from the create answer', async () => {
    const hook = await register('created', ['lead.created'])
    assert.match(hook.secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    assert.equal(Buffer.from(hook.secret.slice('whsec_'.length), 'base64').length, 32)
    const lead = await createLeadAs(ctx.adminToken, { sales_notes: 'llamar' })
    const request = await waitFor('the lead.created delivery', () => at('created')[0])
    const verified = new Webhook(hook.secret).verify(request.body, request.headers as Record<string, string>) as {
      id: string
      type: string
      occurred_at: string
      actor: unknown
      data: { id: number; old: unknown; new: Record<string, unknown>; object: unknown }
    }
    assert.equal(verified.type, 'lead.created')
    assert.match(verified.id, /^evt_/)
    assert.equal(request.headers['webhook-id'], verified.id)
    assert.match(verified.occurred_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.deepEqual(verified.actor, { type: 'user', id: 1, name: 'admin' })
    assert.equal(verified.data.id, lead.id)
    assert.equal(verified.data.old, null)
    assert.equal(verified.data.new.sales_notes, 'llamar')
    const asGetReturnsIt = await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}`)
    assert.deepEqual(verified.data.object, asGetReturnsIt.json())
    // A tampered body or another secret is refused.
    assert.throws(() =>
      new Webhook(hook.secret).verify(request.body.replace('llamar', 'LLAMAR'), request.headers as never),
    )
    // Subscribed to lead.created only: the client created before it and no other type arrived.
    assert.deepEqual(
      at('created').map((received) => received.json.type),
      ['lead.created'],
    )
  })

  it('retries a receiver that answers 500 twice with the same webhook-id, and shows 3 attempts', async () => {
    const hook = await register('flaky', ['lead.created'])
    let answered = 0
    const previous = receiver.respond
    receiver.respond = (request) => (request.path === '/flaky' ? (++answered <= 2 ? 500 : 200) : previous(request))
    try {
      await createLeadAs(ctx.adminToken)
      await waitFor('three attempts', () => at('flaky').length >= 3)
      const ids = new Set(at('flaky').map((request) => request.headers['webhook-id']))
      assert.equal(ids.size, 1, 'the same webhook-id on every attempt')
      const deliveries = await waitFor('the delivery to be delivered', async () => {
        const page = (await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}/deliveries`)).json()
        return page.items[0]?.state === 'delivered' && page
      })
      assert.equal(deliveries.items.length, 1)
      const [delivery] = deliveries.items
      assert.equal(delivery.attempts, 3)
      assert.equal(delivery.last_status, 200)
      assert.equal(delivery.last_error, null)
      assert.equal(delivery.event_id, [...ids][0])
      assert.equal(delivery.event_type, 'lead.created')
      assert.equal(delivery.next_attempt_at, null)
      assert.ok(delivery.delivered_at)
    } finally {
      receiver.respond = previous
    }
  })

  it('disables a webhook at once when the receiver answers 410, and mails the admins', async () => {
    await ctx.as(ctx.adminToken, 'PATCH', '/users/1', { email: 'admin@example.com' })
    const hook = await register('gone', ['lead.created'])
    const previous = receiver.respond
    receiver.respond = (request) => (request.path === '/gone' ? 410 : previous(request))
    try {
      await createLeadAs(ctx.adminToken)
      const webhook = await waitFor('the webhook to be disabled', async () => {
        const body = (await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}`)).json()
        return body.is_active === false && body
      })
      assert.match(webhook.disabled_reason, /410/)
      assert.equal(at('gone').length, 1, 'no retry after a 410')
      const deliveries = (await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}/deliveries`)).json()
      assert.equal(deliveries.items[0].state, 'failed')
      assert.equal(deliveries.items[0].last_status, 410)
      const mail = await ctx.db
        .selectFrom('notifications')
        .selectAll()
        .where('kind', '=', 'webhook_disabled')
        .where('user_id', '=', 1)
        .executeTakeFirst()
      assert.ok(mail, 'a mail to the admin is planned')
      const audit = (await ctx.auditRows('webhooks', hook.id)).at(-1)
      assert.equal(audit?.username, 'system')
      assert.deepEqual(audit?.new_values, { is_active: false, disabled_reason: webhook.disabled_reason })
      // A disabled webhook is given no delivery of later events.
      await createLeadAs(ctx.adminToken)
      await allDispatched()
      const later = (await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}/deliveries`)).json()
      assert.equal(later.total, 1)
      const reenabled = await ctx.as(ctx.adminToken, 'PATCH', `/webhooks/${hook.id}`, { is_active: true })
      assert.equal(reenabled.json().disabled_reason, null)
    } finally {
      receiver.respond = previous
      await ctx.as(ctx.adminToken, 'DELETE', `/webhooks/${hook.id}`)
    }
  })

  it('sends a status change with the old and new status', async () => {
    await register('status', ['lead.status_changed'])
    const lead = await createLeadAs(ctx.adminToken)
    const changed = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'quoted' })
    assert.equal(changed.statusCode, 200)
    const request = await waitFor('the status change', () => at('status')[0])
    assert.equal(request.json.type, 'lead.status_changed')
    assert.deepEqual(request.json.data.old, { status: 'new' })
    assert.deepEqual(request.json.data.new, { status: 'quoted' })
    assert.equal(request.json.data.object.status, 'quoted')
  })

  it("delivers one lead's events in the order they happened, even when the first needs retries", async () => {
    await register('order', ['lead.status_changed', 'lead.assigned', 'lead.updated'])
    const lead = await createLeadAs(ctx.adminToken)
    let first = true
    const previous = receiver.respond
    receiver.respond = (request) => {
      if (request.path !== '/order') return previous(request)
      // The first event fails twice, then passes: the later ones must wait for it.
      if (first && request.json.data.new?.status === 'contacted') {
        const attempts = at('order').filter((r) => r.json.id === request.json.id).length
        if (attempts < 3) return 503
        first = false
      }
      return 200
    }
    try {
      const steps: Array<[string, Record<string, unknown>]> = [
        ['status', { status: 'contacted' }],
        ['assign', { assigned_to: sales.id }],
        ['status', { status: 'quoted' }],
        ['', { sales_notes: 'cotización enviada' }],
        ['status', { status: 'closed' }],
      ]
      for (const [route, body] of steps) {
        const response = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}${route && `/${route}`}`, body)
        assert.equal(response.statusCode, 200, response.body)
      }
      const delivered = await waitFor('five events delivered', () => {
        const ok = new Map<string, ReceivedRequest>()
        for (const request of at('order')) ok.set(request.json.id, request)
        return ok.size === 5 && [...ok.values()]
      })
      assert.deepEqual(
        delivered.map((request) => request.json.type),
        ['lead.status_changed', 'lead.assigned', 'lead.status_changed', 'lead.updated', 'lead.status_changed'],
      )
      assert.deepEqual(
        delivered.map((request) => request.json.data.new),
        [
          { status: 'contacted' },
          { assigned_to: sales.id },
          { status: 'quoted' },
          { sales_notes: 'cotización enviada' },
          { status: 'closed' },
        ],
      )
    } finally {
      receiver.respond = previous
    }
  })

  it('publishes nothing for a refused transition or a rolled-back create', async () => {
    const lead = await createLeadAs(ctx.adminToken, { status: 'closed' })
    const before = await eventCount()
    const refused = await ctx.as(sales.token, 'POST', '/leads', { client_id: clientId, channel: 'web' })
    assert.equal(refused.statusCode, 201)
    const salesLead = refused.json()
    await ctx.db.updateTable('leads').set({ status: 'closed' }).where('id', '=', salesLead.id).execute()
    const afterCreate = await eventCount()
    assert.equal(afterCreate, before + 1)
    const transition = await ctx.as(sales.token, 'PATCH', `/leads/${salesLead.id}/status`, { status: 'contacted' })
    assert.equal(transition.statusCode, 409)
    assert.equal(problemOf(transition).code, 'invalid_transition')
    const invalid = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'quoted' })
    assert.equal(invalid.statusCode, 409)
    assert.equal(await eventCount(), afterCreate, 'no event for a refused transition')

    const admin: AuthenticatedActor = { userId: 1, username: 'admin', role: 'admin', requestId: 'rolled-back' }
    await assert.rejects(
      ctx.db.transaction().execute(async (trx) => {
        await createLead(trx, admin, { client_id: clientId, channel: 'manual' })
        throw new Error('something after the insert failed')
      }),
      /something after the insert failed/,
    )
    assert.equal(await eventCount(), afterCreate, 'no event for a rolled-back create')
    const leftovers = await ctx.db.selectFrom('events').select('id').where('request_id', '=', 'rolled-back').execute()
    assert.deepEqual(leftovers, [])
  })

  it('answers a ping with its outcome, signed like any event', async () => {
    const hook = await register('ping')
    const ping = await ctx.as(ctx.adminToken, 'POST', `/webhooks/${hook.id}/ping`)
    assert.equal(ping.statusCode, 200, ping.body)
    assert.equal(ping.json().delivered, true)
    assert.equal(ping.json().status, 200)
    const [request] = at('ping').filter((received) => received.json.type === 'webhook.ping')
    assert.ok(request)
    new Webhook(hook.secret).verify(request.body, request.headers as Record<string, string>)
  })

  it('fails a delivery after 7 attempts, retries it by hand, and disables the webhook after 20 failed deliveries', async () => {
    const hook = await register('down', ['client.created'])
    const previous = receiver.respond
    let down = true
    receiver.respond = (request) => (request.path === '/down' ? (down ? 500 : 204) : previous(request))
    try {
      for (let index = 0; index < 20; index++) {
        const created = await ctx.as(ctx.adminToken, 'POST', '/clients', {
          contact_name: `C${index}`,
          phone: uniquePhone(),
        })
        assert.equal(created.statusCode, 201)
      }
      const webhook = await waitFor(
        'the webhook to disable itself',
        async () => {
          const body = (await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}`)).json()
          return body.is_active === false && body
        },
        30_000,
      )
      assert.match(webhook.disabled_reason, /20 deliveries/)
      const page = (await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}/deliveries?limit=200`)).json()
      assert.equal(page.total, 20)
      for (const delivery of page.items) {
        assert.equal(delivery.state, 'failed')
        assert.equal(delivery.attempts, 7)
        assert.equal(delivery.last_status, 500)
      }
      assert.equal(at('down').length, 140)

      down = false
      const [last] = page.items
      const retried = await ctx.as(ctx.adminToken, 'POST', `/webhooks/${hook.id}/deliveries/${last.id}/retry`)
      assert.equal(retried.statusCode, 200, retried.body)
      assert.equal(retried.json().state, 'delivered')
      assert.equal(retried.json().attempts, 8)
      assert.equal(retried.json().last_status, 204)
      const missing = await ctx.as(ctx.adminToken, 'POST', `/webhooks/${hook.id}/deliveries/999999/retry`)
      assert.equal(missing.statusCode, 404)
    } finally {
      receiver.respond = previous
      await ctx.as(ctx.adminToken, 'DELETE', `/webhooks/${hook.id}`)
    }
  })

  it('never answers or audits a secret except on create and rotate', async () => {
    const hook = await register('secret')
    for (const path of ['/webhooks', `/webhooks/${hook.id}`]) {
      const response = await ctx.as(ctx.adminToken, 'GET', path)
      assert.equal(response.statusCode, 200)
      assert.ok(!response.body.includes(hook.secret.slice(6, 20)), path)
      assert.ok(!response.body.includes('whsec_'), path)
    }
    const rotated = await ctx.as(ctx.adminToken, 'POST', `/webhooks/${hook.id}/rotate-secret`)
    assert.equal(rotated.statusCode, 200)
    const { secret } = rotated.json()
    assert.notEqual(secret, hook.secret)
    for (const row of await ctx.auditRows('webhooks', hook.id)) {
      assert.ok(!JSON.stringify(row).includes('whsec_'), 'no secret in the audit log')
    }
    const ping = await ctx.as(ctx.adminToken, 'POST', `/webhooks/${hook.id}/ping`)
    assert.equal(ping.json().delivered, true)
    const request = at('secret').at(-1) as ReceivedRequest
    new Webhook(secret).verify(request.body, request.headers as Record<string, string>)
    assert.throws(() => new Webhook(hook.secret).verify(request.body, request.headers as Record<string, string>))
  })

  it('refuses bad input with a 400 naming the field', async () => {
    const unknownType = await ctx.as(ctx.adminToken, 'POST', '/webhooks', {
      url: `${receiver.url}/x`,
      events: ['lead.exploded'],
    })
    assert.equal(unknownType.statusCode, 400)
    assert.match(problemOf(unknownType).errors?.[0]?.field ?? '', /^events/)
    const noEvents = await ctx.as(ctx.adminToken, 'POST', '/webhooks', { url: `${receiver.url}/x`, events: [] })
    assert.equal(noEvents.statusCode, 400)
    const ftp = await ctx.as(ctx.adminToken, 'POST', '/webhooks', { url: 'ftp://example.com/x', events: ['*'] })
    assert.equal(ftp.statusCode, 400)
    assert.equal(problemOf(ftp).code, 'webhook_url_not_allowed')
  })

  it('gives sales and management a 403 on every webhook route', async () => {
    const hook = await register('roles')
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/webhooks'],
      ['POST', '/webhooks', { url: `${receiver.url}/x`, events: ['*'] }],
      ['GET', `/webhooks/${hook.id}`],
      ['PATCH', `/webhooks/${hook.id}`, { is_active: false }],
      ['DELETE', `/webhooks/${hook.id}`],
      ['POST', `/webhooks/${hook.id}/rotate-secret`],
      ['GET', `/webhooks/${hook.id}/deliveries`],
      ['POST', `/webhooks/${hook.id}/deliveries/1/retry`],
      ['POST', `/webhooks/${hook.id}/ping`],
    ]
    for (const user of [sales, management]) {
      for (const [method, path, body] of routes) {
        const response = await ctx.as(user.token, method as never, path, body)
        assert.equal(response.statusCode, 403, `${user.role} ${method} ${path}`)
      }
    }
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/webhooks/${hook.id}`)).json().is_active, true)
  })

  it('purges events past EVENT_RETENTION_DAYS with their deliveries, keeping any whose delivery or mail is pending', async () => {
    await register('retention', ['lead.created'])
    const [waitingDelivery, waitingMail, recent] = [
      await createLeadAs(ctx.adminToken),
      await createLeadAs(ctx.adminToken),
      await createLeadAs(ctx.adminToken),
    ]
    await allDispatched()
    await waitFor('the three deliveries', () => at('retention').length === 3)
    const eventOf = async (leadId: number) =>
      (
        await ctx.db
          .selectFrom('events')
          .select('id')
          .where('resource_key', '=', `lead:${leadId}`)
          .executeTakeFirstOrThrow()
      ).id
    const deliveryEvent = await eventOf(waitingDelivery.id)
    const mailEvent = await eventOf(waitingMail.id)
    const recentEvent = await eventOf(recent.id)
    const later = sql<Date>`now() + interval '1 day'`
    await ctx.db
      .updateTable('webhook_deliveries')
      .set({ state: 'pending', next_attempt_at: later })
      .where('event_id', '=', deliveryEvent)
      .execute()
    await ctx.db
      .insertInto('notifications')
      .values({
        subject_key: 'retention-test',
        user_id: 1,
        kind: 'lead_assigned',
        event_id: mailEvent,
        next_attempt_at: later,
      })
      .execute()
    await ctx.db
      .updateTable('events')
      .set({ occurred_at: sql<Date>`now() - interval '31 days'` })
      .where('id', '!=', recentEvent)
      .execute()

    const before = await eventCount()
    const purged = await purgeOldEvents(ctx.db, 30)
    assert.equal(purged, before - 3)
    const kept = await ctx.db.selectFrom('events').select('id').orderBy('id').execute()
    assert.deepEqual(
      kept.map((row) => row.id),
      [deliveryEvent, mailEvent, recentEvent].sort((a, b) => Number(a) - Number(b)),
    )
    const orphans = await ctx.db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('event_id', 'not in', [deliveryEvent, mailEvent, recentEvent])
      .execute()
    assert.deepEqual(orphans, [])
    assert.equal(await purgeOldEvents(ctx.db, 30), 0)
  })

  describe('without WEBHOOK_ALLOW_PRIVATE_NETWORKS', () => {
    it('refuses loopback, private and http URLs when saved, and a name resolving to loopback', async () => {
      const strict = await buildApp({
        config: { ...ctx.config, webhookAllowPrivateNetworks: false },
        db: ctx.db,
        jwtSecret: ctx.config.jwtSecret as string,
      })
      try {
        for (const url of [
          'http://127.0.0.1/hook',
          'https://127.0.0.1/hook',
          'https://localhost/hook',
          'https://10.1.2.3/hook',
          'https://169.254.169.254/latest/meta-data',
          'https://[::1]/hook',
          'https://[fd12:3456::1]/hook',
          'http://example.com/hook',
        ]) {
          const response = await checkedInject(strict, {
            method: 'POST',
            url: '/webhooks',
            headers: { authorization: `Bearer ${ctx.adminToken}` },
            payload: { url, events: ['*'] },
          })
          assert.equal(response.statusCode, 400, url)
          assert.equal(problemOf(response).code, 'webhook_url_not_allowed', url)
        }
      } finally {
        await strict.close()
      }
    })

    it('refuses IPv6 addresses that embed an IPv4 one, when saved and when delivering', async () => {
      const strict = await buildApp({
        config: { ...ctx.config, webhookAllowPrivateNetworks: false },
        db: ctx.db,
        jwtSecret: ctx.config.jwtSecret as string,
      })
      const embedding = [
        'https://[::127.0.0.1]/hook', // IPv4-compatible, ::/96
        'https://[::a9fe:a9fe]/hook',
        'https://[::8.8.8.8]/hook',
        'https://[::ffff:127.0.0.1]/hook', // IPv4-mapped
        'https://[::ffff:a9fe:a9fe]/hook',
        'https://[::ffff:0:a9fe:a9fe]/hook', // SIIT
        'https://[64:ff9b::7f00:1]/hook', // NAT64
        'https://[64:ff9b::10.0.0.1]/hook',
        'https://[2002:7f00:1::1]/hook', // 6to4
        'https://[2002:a9fe:a9fe::1]/hook',
      ]
      try {
        for (const url of embedding) {
          const response = await strict.inject({
            method: 'POST',
            url: '/webhooks',
            headers: { authorization: `Bearer ${ctx.adminToken}` },
            payload: { url, events: ['*'] },
          })
          assert.equal(response.statusCode, 400, url)
          assert.equal(problemOf(response).code, 'webhook_url_not_allowed', url)
        }
        // A public IPv4-mapped address is that IPv4 address, and passes.
        const mapped = await strict.inject({
          method: 'POST',
          url: '/webhooks',
          headers: { authorization: `Bearer ${ctx.adminToken}` },
          payload: { url: 'https://[::ffff:8.8.8.8]/hook', events: ['*'], is_active: false },
        })
        assert.equal(mapped.statusCode, 201, mapped.body)
        await strict.inject({
          method: 'DELETE',
          url: `/webhooks/${mapped.json().id}`,
          headers: { authorization: `Bearer ${ctx.adminToken}` },
        })
      } finally {
        await strict.close()
      }
      for (const url of ['https://[::a9fe:a9fe]/late', 'https://[::127.0.0.1]/late']) {
        const outcome = await deliver(
          { url, secret: `whsec_${'A'.repeat(43)}=` },
          { id: 'evt_late', body: '{}' },
          { allowPrivateNetworks: false, timeoutMs: 1000 },
        )
        assert.equal(outcome.ok, false, url)
        assert.equal(outcome.status, null, url)
        assert.match(outcome.error ?? '', /IPv4-compatible/, url)
      }
    })

    it('checks the address again when delivering, and sends nothing to a private one', async () => {
      const before = at('late').length
      const outcome = await deliver(
        { url: `${receiver.url.replace('127.0.0.1', 'localhost')}/late`, secret: `whsec_${'A'.repeat(43)}=` },
        { id: 'evt_late', body: '{}' },
        { allowPrivateNetworks: false, timeoutMs: 1000 },
      )
      assert.equal(outcome.ok, false)
      assert.equal(outcome.status, null)
      assert.match(outcome.error ?? '', /http: and https:|https: URLs/)
      const https = await deliver(
        { url: 'https://localhost:1/late', secret: `whsec_${'A'.repeat(43)}=` },
        { id: 'evt_late', body: '{}' },
        { allowPrivateNetworks: false, timeoutMs: 1000 },
      )
      assert.match(https.error ?? '', /loopback/)
      assert.equal(at('late').length, before)
    })
  })
})
