import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import type { EventActor } from '../src/auth/actor.js'
import { createMailer } from '../src/notifications/mailer.js'
import { recipientsOf } from '../src/notifications/rules.js'
import { renderMail } from '../src/notifications/templates.js'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createLead } from './helpers/fixtures.js'
import { type MailSink, startMailSink, waitFor } from './helpers/peers.js'

const PUBLIC_URL = 'https://crm.example.com'

describe('notification mails', () => {
  let ctx: TestContext
  let sink: MailSink
  let english: TestUser
  let spanish: TestUser
  let manager: TestUser
  let clientId: number

  before(async () => {
    sink = await startMailSink()
    ctx = await startTestContext({
      SMTP_URL: sink.url,
      MAIL_FROM: 'CRM <crm@example.com>',
      PUBLIC_URL,
      WORKER_POLL_MS: '50',
      JOB_RETRY_DELAYS_SECONDS: '0.05,0.05',
    })
    english = await ctx.createUser('sales', { email: 'ann@example.com', full_name: 'Ann Lee', locale: 'en' })
    spanish = await ctx.createUser('sales', { email: 'jose@example.com', full_name: 'José Díaz' })
    manager = await ctx.createUser('management', { email: 'boss@example.com' })
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      client_type: 'juridical',
      contact_name: 'Luis <script>alert(1)</script>',
      company_name: 'Tom & Jerry C.A.',
      phone: '+584145550101',
    })
    clientId = client.json().id
  })
  after(async () => {
    await ctx.close()
    await sink.close()
  })

  const mailsTo = (address: string) =>
    sink.mails.filter((mail) => (Array.isArray(mail.to) ? mail.to : [mail.to]).some((to) => to?.text === address))
  const newLead = (token: string, body: Record<string, unknown> = {}) =>
    createLead(ctx, { client_id: clientId, ...body }, token)
  /** Once the lead's events are fanned out, its mails are planned: nothing more will be added. */
  const planned = async (leadId: number) => {
    await waitFor('the events to be fanned out', async () => {
      const waiting = await ctx.db
        .selectFrom('events')
        .select('id')
        .where('resource_key', '=', `lead:${leadId}`)
        .where('dispatched_at', 'is', null)
        .execute()
      return waiting.length === 0
    })
    return ctx.db
      .selectFrom('notifications')
      .innerJoin('events', 'events.id', 'notifications.event_id')
      .select(['notifications.user_id', 'notifications.kind', 'notifications.state'])
      .where('events.resource_key', '=', `lead:${leadId}`)
      .execute()
  }

  it('starts with every setting on, and lets each user change their own', async () => {
    const defaults = await ctx.as(spanish.token, 'GET', '/auth/me/notifications')
    assert.equal(defaults.statusCode, 200)
    assert.deepEqual(defaults.json(), {
      lead_assigned: true,
      lead_status_changed: true,
      inbound_lead: true,
      daily_digest: false,
    })
    const bad = await ctx.as(spanish.token, 'PATCH', '/auth/me/notifications', { lead_assigned: 'nope' })
    assert.equal(bad.statusCode, 400)
    const unknown = await ctx.as(spanish.token, 'PATCH', '/auth/me/notifications', { everything: false })
    assert.equal(unknown.statusCode, 400)
  })

  it('mails the assignee once, in their locale, with a link to the lead and the HTML escaped', async () => {
    const lead = await newLead(manager.token)
    const assigned = await ctx.as(manager.token, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: english.id })
    assert.equal(assigned.statusCode, 200)
    const [mail] = await waitFor(
      'the mail to Ann',
      () => mailsTo('ann@example.com').length > 0 && mailsTo('ann@example.com'),
    )
    assert.ok(mail)
    assert.deepEqual(mail.from?.value, [{ address: 'crm@example.com', name: 'CRM' }])
    assert.match(mail.subject ?? '', new RegExp(`^Lead #${lead.id} was assigned to you`))
    assert.match(mail.text ?? '', /Hello Ann Lee/)
    // The dashboard's page of the lead, in English like the mail.
    const page = `${PUBLIC_URL}/dashboard/leads/${lead.id}?lang=en`
    assert.ok(mail.text?.includes(`Open the lead: ${page}\n`), mail.text)
    assert.ok(mail.text?.includes('Luis <script>alert(1)</script> (Tom & Jerry C.A.)'), 'plain text as typed')
    const html = String(mail.html)
    assert.ok(html.includes('Luis &lt;script&gt;alert(1)&lt;/script&gt; (Tom &amp; Jerry C.A.)'), html)
    assert.ok(!html.includes('<script>'), 'no markup from what users typed')
    assert.ok(html.includes(`<a href="${page}">Open the lead</a>`), html)
    const once = [{ user_id: english.id, kind: 'lead_assigned', state: 'sent' }]
    await waitFor('one mail, marked sent', async () => JSON.stringify(await planned(lead.id)) === JSON.stringify(once))
  })

  it('writes Spanish by default, and tells the assignee when someone else moves their lead', async () => {
    const lead = await newLead(manager.token, { assigned_to: spanish.id })
    await waitFor('the assignment mail', () => mailsTo('jose@example.com').length === 1)
    assert.match(mailsTo('jose@example.com')[0]?.subject ?? '', new RegExp(`^Te asignaron el lead #${lead.id}`))
    await ctx.as(manager.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'quoted' })
    await waitFor('the status mail', () => mailsTo('jose@example.com').length === 2)
    const statusMail = mailsTo('jose@example.com')[1]
    assert.equal(statusMail?.subject, `El lead #${lead.id} pasó a cotizado`)
    const page = `${PUBLIC_URL}/dashboard/leads/${lead.id}`
    assert.ok(statusMail?.text?.includes(`Ver el lead: ${page}\n`), statusMail?.text)
    assert.ok(String(statusMail?.html).includes(`<a href="${page}">Ver el lead</a>`), String(statusMail?.html))
    assert.match(statusMail?.text ?? '', /de nuevo a cotizado/)
    // Moving their own lead themselves mails nobody.
    await ctx.as(spanish.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'closed' })
    assert.equal((await planned(lead.id)).length, 2)
    assert.equal(mailsTo('jose@example.com').length, 2)
  })

  it('mails nobody for a lead one assigns to oneself, or to a user who turned the setting off', async () => {
    const own = await newLead(spanish.token)
    assert.deepEqual(await planned(own.id), [])

    const off = await ctx.as(english.token, 'PATCH', '/auth/me/notifications', { lead_assigned: false })
    assert.deepEqual(off.json(), {
      lead_assigned: false,
      lead_status_changed: true,
      inbound_lead: true,
      daily_digest: false,
    })
    const audit = (await ctx.auditRows('users', english.id)).at(-1)
    assert.deepEqual(audit?.new_values, { notify_lead_assigned: false })
    const before = mailsTo('ann@example.com').length
    const lead = await newLead(manager.token, { assigned_to: english.id })
    assert.deepEqual(await planned(lead.id), [])
    assert.equal(mailsTo('ann@example.com').length, before)
    await ctx.as(english.token, 'PATCH', '/auth/me/notifications', { lead_assigned: true })

    const noEmail = await ctx.createUser('sales')
    const unmailable = await newLead(manager.token, { assigned_to: noEmail.id })
    assert.deepEqual(await planned(unmailable.id), [])
  })

  it('sends no second mail when the job runs again, and one after the SMTP server refused it once', async () => {
    let refusals = 1
    sink.refuse = () => (refusals-- > 0 ? 'Try again later' : undefined)
    try {
      const before = mailsTo('ann@example.com').length
      const lead = await newLead(manager.token, { assigned_to: english.id })
      await waitFor('the mail after a refusal', () => mailsTo('ann@example.com').length === before + 1)
      // The mail left before its row was marked sent: wait for the mark.
      const row = await waitFor('the mail marked sent', async () => {
        const found = await ctx.db
          .selectFrom('notifications')
          .innerJoin('events', 'events.id', 'notifications.event_id')
          .select(['notifications.id', 'notifications.attempts', 'notifications.state', 'events.id as event_id'])
          .where('events.resource_key', '=', `lead:${lead.id}`)
          .executeTakeFirst()
        return found?.state === 'sent' && found
      })
      assert.equal(row?.attempts, 2)
      assert.equal(row?.state, 'sent')

      // The fan-out of the same event runs again (as after a crash before it was marked done).
      await ctx.db
        .updateTable('events')
        .set({ dispatched_at: null })
        .where('id', '=', row?.event_id as number)
        .execute()
      await planned(lead.id)
      // A later mail arriving proves the workers went round since.
      const later = await newLead(manager.token)
      await ctx.as(manager.token, 'PATCH', `/leads/${later.id}/assign`, { assigned_to: english.id })
      await waitFor('the later mail', () => mailsTo('ann@example.com').length === before + 2)
      const forLead = mailsTo('ann@example.com').filter((mail) => mail.subject?.startsWith(`Lead #${lead.id} `))
      assert.equal(forLead.length, 1, 'one mail for one event, however often its job runs')
    } finally {
      sink.refuse = () => undefined
    }
  })

  it('mails admins and management about a lead arriving unassigned from a form or WhatsApp', () => {
    const arriving = (actor: EventActor, assigned_to: number | null) =>
      recipientsOf({ type: 'lead.created', actor, data: { object: { assigned_to } } })
    const form: EventActor = { type: 'form', id: 3, name: 'Contacto' }
    assert.deepEqual(arriving(form, null), [{ kind: 'inbound_lead', roles: ['admin', 'management'] }])
    assert.deepEqual(arriving({ type: 'whatsapp', id: 1, name: 'WhatsApp' }, null), [
      { kind: 'inbound_lead', roles: ['admin', 'management'] },
    ])
    assert.deepEqual(arriving(form, 5), [{ kind: 'lead_assigned', userId: 5 }])
    assert.deepEqual(arriving({ type: 'user', id: 2, name: 'ana' }, null), [])
  })

  it('mails nobody about what they did themselves through their own API key', () => {
    const throughKey: EventActor = { type: 'api_key', id: 9, name: 'crm sync', user_id: 5 }
    const event = (type: string, assigned_to: number) =>
      recipientsOf({ type, actor: throughKey, data: { object: { assigned_to } } })
    assert.deepEqual(event('lead.created', 5), [])
    assert.deepEqual(event('lead.status_changed', 5), [])
    assert.deepEqual(event('lead.assigned', 6), [{ kind: 'lead_assigned', userId: 6 }])
  })

  it('renders the inbound-lead mail for admins and management', () => {
    const mail = renderMail('inbound_lead', 'es', {
      publicUrl: PUBLIC_URL,
      recipientName: 'Ana',
      actorName: 'Formulario web',
      lead: { id: 7, status: 'new', channel: 'web', client: { contact_name: 'Eva', company_name: null, phone: '+1' } },
    })
    assert.match(mail.subject, /^Nuevo lead sin asignar #7: Eva$/)
    assert.ok(mail.text.includes(`Ver el lead: ${PUBLIC_URL}/dashboard/leads/7\n`), mail.text)
    assert.ok(mail.html.includes(`<a href="${PUBLIC_URL}/dashboard/leads/7">Ver el lead</a>`), mail.html)
  })
})

describe('mail without SMTP_URL', () => {
  it('writes the recipient, subject and text to the log at info', async () => {
    const lines: string[] = []
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(chunk.toString())
          done()
        },
      }),
    )
    const mailer = createMailer({ smtpUrl: undefined, from: 'CRM <crm@example.com>', log })
    await mailer.send('ann@example.com', { subject: 'Hello', text: 'The text', html: '<p>The text</p>' })
    const entry = JSON.parse(lines[0] ?? '{}')
    assert.equal(entry.level, 30)
    assert.deepEqual(entry.mail, { to: 'ann@example.com', subject: 'Hello', text: 'The text' })
  })
})
