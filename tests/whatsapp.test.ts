import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { buildApp, withSecretsRedacted } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { sendWhatsAppMessage, WhatsAppSendError } from '../src/whatsapp/graph.js'
import { senderPhoneCandidates } from '../src/whatsapp/numbers.js'
import type { WhatsAppMessage } from '../src/whatsapp/schemas.js'
import { messageBody } from '../src/whatsapp/service.js'
import { problemOf, startTestContext, type TestContext, type TestUser, testConfig } from './helpers/context.js'
import { checkedInject } from './helpers/contract.js'
import { type FakeGraphApi, startFakeGraphApi } from './helpers/graph-api.js'

const APP_SECRET = `app-secret-${randomBytes(8).toString('hex')}`
const VERIFY_TOKEN = `verify-${randomBytes(8).toString('hex')}`
const WEBHOOK = '/integrations/whatsapp/webhook'

let messageCounter = 0
const nextMessageId = () => {
  messageCounter += 1
  return `wamid.HBgMNTg0MTIzNDU2Nzg5FQIAEhgU${messageCounter.toString().padStart(6, '0')}AA==`
}
const now = () => String(Math.floor(Date.now() / 1000))

/** JSON as Meta writes it: every non-ASCII character escaped as \uXXXX. */
function metaJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

const signatureOf = (body: string, secret = APP_SECRET) =>
  `sha256=${createHmac('sha256', secret).update(Buffer.from(body, 'utf8')).digest('hex')}`

type Message = Record<string, unknown> & { id: string; type: string }

/** One change of a `messages` webhook, with the contact and metadata blocks of Meta's reference. */
function change(value: { contacts?: unknown[]; messages?: Message[]; statuses?: unknown[] }) {
  return {
    field: 'messages',
    value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
      ...value,
    },
  }
}

const notification = (...changes: ReturnType<typeof change>[][]) => ({
  object: 'whatsapp_business_account',
  entry: changes.map((entryChanges) => ({ id: '102290129340398', changes: entryChanges })),
})

const contact = (waId: string, name?: string) => ({ profile: name === undefined ? {} : { name }, wa_id: waId })

const textMessage = (from: string, body: string): Message => ({
  from,
  id: nextMessageId(),
  timestamp: now(),
  type: 'text',
  text: { body },
})

const imageMessage = (from: string, caption?: string): Message => ({
  from,
  id: nextMessageId(),
  timestamp: now(),
  type: 'image',
  image: {
    ...(caption && { caption }),
    mime_type: 'image/jpeg',
    sha256: '81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3',
    id: '2754859441498128',
  },
})

const audioMessage = (from: string): Message => ({
  from,
  id: nextMessageId(),
  timestamp: now(),
  type: 'audio',
  audio: {
    mime_type: 'audio/ogg; codecs=opus',
    sha256: 'f3b2c1d8e0a94f5e8f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70',
    id: '1003383421387256',
    voice: true,
  },
})

const statusOf = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  status,
  timestamp: now(),
  recipient_id: '584123456789',
  ...(status !== 'failed' &&
    status !== 'read' && {
      conversation: { id: 'a75d17ad06104c51166f948319b03c6a', origin: { type: 'service' } },
      pricing: { billable: true, pricing_model: 'CBP', category: 'service' },
    }),
  ...extra,
})

let waCounter = 0
/** A Venezuelan mobile number as WhatsApp writes a wa_id: digits, no plus. */
const nextWaId = () => {
  waCounter += 1
  return `58424${String(3_000_000 + waCounter)}`
}

describe('the forms of a WhatsApp sender’s number', () => {
  it('tries the other form of a Brazilian, Mexican or Argentinian mobile line, the valid one first', () => {
    assert.deepEqual(senderPhoneCandidates('551187654321'), ['+5511987654321', '+551187654321'])
    assert.deepEqual(senderPhoneCandidates('5511987654321'), ['+5511987654321', '+551187654321'])
    assert.deepEqual(senderPhoneCandidates('5215512345678'), ['+525512345678', '+5215512345678'])
    assert.deepEqual(senderPhoneCandidates('525512345678'), ['+525512345678', '+5215512345678'])
    assert.deepEqual(senderPhoneCandidates('5491123456789'), ['+5491123456789', '+541123456789'])
    assert.deepEqual(senderPhoneCandidates('584123456789'), ['+584123456789'])
    // A Brazilian landline (8 digits starting 2–5) has no ninth-digit form.
    assert.deepEqual(senderPhoneCandidates('551133334444'), ['+551133334444'])
  })
})

describe('what the timeline shows of a WhatsApp message', () => {
  it('keeps text, and names other types in brackets with their caption or reply', () => {
    const of = (type: string, content?: Record<string, unknown>) =>
      messageBody({
        from: '584123456789',
        id: 'x',
        timestamp: '1',
        type,
        ...(content && { [type]: content }),
      } as WhatsAppMessage)
    assert.equal(of('text', { body: 'Hola' }), 'Hola')
    assert.equal(of('image', { id: '1', mime_type: 'image/jpeg' }), '[image]')
    assert.equal(of('document', { caption: 'Presupuesto', filename: 'p.pdf' }), '[document] Presupuesto')
    assert.equal(of('button', { text: 'Sí, me interesa', payload: 'yes' }), '[button] Sí, me interesa')
    assert.equal(
      of('interactive', { type: 'list_reply', list_reply: { id: '2', title: 'Martes' } }),
      '[interactive] Martes',
    )
    assert.equal(of('reaction', { message_id: 'wamid.1', emoji: '👍' }), '[reaction] 👍')
    assert.equal(of('location', { latitude: 10.5, longitude: -66.9 }), '[location]')
    assert.equal(of('unsupported'), '[unsupported]')
  })
})

describe('sending through the Graph API', () => {
  it('fails with whatsapp_send_failed, without Meta’s code, when the Graph API cannot be reached', async () => {
    const config = {
      verifyToken: 'v',
      appSecret: 's',
      accessToken: 't',
      phoneNumberId: '106540352242922',
      // Port 1 on loopback: nothing listens there, the connection is refused at once.
      graphUrl: 'http://127.0.0.1:1/v21.0',
    }
    await assert.rejects(sendWhatsAppMessage(config, '+584123456789', { text: 'hola' }), (error: unknown) => {
      assert.ok(error instanceof WhatsAppSendError)
      assert.equal(error.status, 502)
      assert.deepEqual(error.extra, { meta_code: null, meta_message: 'the Graph API could not be reached' })
      return true
    })
  })
})

describe('WhatsApp configuration', () => {
  it('needs the four values together, naming the missing ones', () => {
    assert.equal(loadConfig({}, { dotenv: false }).whatsapp, undefined)
    assert.throws(
      () => loadConfig({ WHATSAPP_VERIFY_TOKEN: 'v', WHATSAPP_APP_SECRET: 's' }, { dotenv: false }),
      /missing WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID/,
    )
    const config = loadConfig(
      {
        WHATSAPP_VERIFY_TOKEN: 'v',
        WHATSAPP_APP_SECRET: 's',
        WHATSAPP_ACCESS_TOKEN: 't',
        WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
        WHATSAPP_GRAPH_URL: 'https://graph.example.com/v21.0/',
      },
      { dotenv: false },
    )
    assert.equal(config.whatsapp?.graphUrl, 'https://graph.example.com/v21.0')
  })
})

describe('WhatsApp Business (Cloud API)', () => {
  let ctx: TestContext
  let graph: FakeGraphApi
  let owner: TestUser
  let other: TestUser

  before(async () => {
    graph = await startFakeGraphApi()
    ctx = await startTestContext({
      WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN,
      WHATSAPP_APP_SECRET: APP_SECRET,
      WHATSAPP_ACCESS_TOKEN: graph.accessToken,
      WHATSAPP_PHONE_NUMBER_ID: graph.phoneNumberId,
      WHATSAPP_GRAPH_URL: graph.url,
    })
    owner = await ctx.createUser('sales')
    other = await ctx.createUser('sales')
  })
  after(async () => {
    await ctx?.close()
    await graph?.close()
  })

  /** POSTs the body's exact bytes, signed unless a signature (or null for none) is given. */
  const deliver = (body: string, signature: string | null = signatureOf(body)) =>
    ctx.inject({
      method: 'POST',
      url: WEBHOOK,
      headers: { 'content-type': 'application/json', ...(signature !== null && { 'x-hub-signature-256': signature }) },
      payload: body,
    })

  const count = async (table: 'clients' | 'leads' | 'lead_activities' | 'audit_logs' | 'events') =>
    Number((await ctx.db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n)
  const counts = async () => ({
    clients: await count('clients'),
    leads: await count('leads'),
    activities: await count('lead_activities'),
    audit: await count('audit_logs'),
    events: await count('events'),
  })
  const clientByPhone = (phone: string) =>
    ctx.db.selectFrom('clients').selectAll().where('phone', '=', phone).executeTakeFirst()
  const activitiesOf = (leadId: number) =>
    ctx.db.selectFrom('lead_activities').selectAll().where('lead_id', '=', leadId).orderBy('id').execute()
  const leadsOf = (clientId: number) =>
    ctx.db.selectFrom('leads').selectAll().where('client_id', '=', clientId).orderBy('id').execute()

  /** A lead of a new client that wrote on WhatsApp just now, assigned to `owner`. */
  const leadInWindow = async () => {
    const waId = nextWaId()
    const response = await deliver(
      metaJson(notification([change({ contacts: [contact(waId, 'Ana')], messages: [textMessage(waId, 'Hola')] })])),
    )
    assert.equal(response.statusCode, 200, response.body)
    const client = await clientByPhone(`+${waId}`)
    assert.ok(client)
    const [lead] = await leadsOf(client.id)
    assert.ok(lead)
    await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: owner.id })
    return { leadId: lead.id, phone: client.phone }
  }

  describe('webhook verification', () => {
    it('answers the challenge as text/plain when the token matches, else 403', async () => {
      const challenge = '1158201444'
      const ok = await ctx.inject({
        method: 'GET',
        url: `${WEBHOOK}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=${challenge}`,
      })
      assert.equal(ok.statusCode, 200)
      assert.match(String(ok.headers['content-type']), /^text\/plain/)
      assert.equal(ok.body, challenge)
      for (const query of [
        `hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}x&hub.challenge=1`,
        `hub.mode=subscribe&hub.verify_token=&hub.challenge=1`,
        `hub.mode=unsubscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1`,
        'hub.challenge=1',
      ]) {
        const refused = await ctx.inject({ method: 'GET', url: `${WEBHOOK}?${query}` })
        assert.equal(refused.statusCode, 403, query)
        assert.match(String(refused.headers['content-type']), /^application\/problem\+json/)
        assert.ok(!refused.body.includes(VERIFY_TOKEN), 'the answer does not carry the verify token')
      }
      // The request's log line keeps the URL without the token.
      const logged = withSecretsRedacted(
        `${WEBHOOK}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1`,
      )
      assert.ok(!logged.includes(VERIFY_TOKEN), logged)
    })

    it('answers 404 on every WhatsApp route while WhatsApp is not configured', async () => {
      const app = await buildApp({ config: testConfig(), db: ctx.db, jwtSecret: 'x'.repeat(40) })
      try {
        const body = metaJson(notification([]))
        const answers = await Promise.all([
          checkedInject(app, {
            method: 'GET',
            url: `${WEBHOOK}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1`,
          }),
          checkedInject(app, {
            method: 'POST',
            url: WEBHOOK,
            headers: { 'content-type': 'application/json', 'x-hub-signature-256': signatureOf(body) },
            payload: body,
          }),
          checkedInject(app, { method: 'POST', url: '/leads/1/whatsapp', payload: { text: 'hola' } }),
        ])
        for (const answer of answers) assert.equal(answer.statusCode, 404, answer.body)
      } finally {
        await app.close()
      }
    })
  })

  describe('inbound messages', () => {
    it('turns text, image and audio from a new number into one client, one lead and three activities', async () => {
      const waId = nextWaId()
      const name = 'José Ñúñez Müller 😀'
      const text = textMessage(waId, '¿Tienen cotización para 3 equipos?')
      const image = imageMessage(waId, 'Así está la oficina')
      const audio = audioMessage(waId)
      // Two entries, the second with two changes: every one of them is read.
      const body = metaJson(
        notification(
          [change({ contacts: [contact(waId, name)], messages: [text] })],
          [
            change({ contacts: [contact(waId, name)], messages: [image] }),
            change({ contacts: [contact(waId, name)], messages: [audio] }),
          ],
        ),
      )
      assert.ok(body.includes('\\u00d1') && !body.includes('Ñ'), 'the body carries escapes, as Meta sends it')
      const before = await counts()
      const lastEvent = await ctx.db
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('id'))
        .executeTakeFirst()
      const response = await deliver(body)
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(response.json(), { messages: 3, stored: 3, refused: 0, statuses: 0, updated: 0 })

      const client = await clientByPhone(`+${waId}`)
      assert.ok(client, 'the client was created with the number in E.164')
      assert.equal(client.contact_name, name)
      const leads = await leadsOf(client.id)
      assert.equal(leads.length, 1)
      assert.equal(leads[0]?.channel, 'whatsapp')
      assert.equal(leads[0]?.status, 'new')
      const activities = await activitiesOf(leads[0]?.id as number)
      const inbound = activities.filter((activity) => activity.type === 'whatsapp')
      assert.deepEqual(
        inbound.map((activity) => [activity.direction, activity.body, activity.external_id]),
        [
          ['inbound', '¿Tienen cotización para 3 equipos?', text.id],
          ['inbound', '[image] Así está la oficina', image.id],
          ['inbound', '[audio]', audio.id],
        ],
      )
      const after = await counts()
      assert.equal(after.clients, before.clients + 1)
      assert.equal(after.leads, before.leads + 1)
      assert.equal(after.activities - before.activities, activities.length)

      // Audit rows and events name WhatsApp as the actor.
      const audit = await ctx.auditRows('clients', client.id)
      assert.equal(audit[0]?.username, `whatsapp:${graph.phoneNumberId}`)
      assert.equal(audit[0]?.user_id, null)
      const events = await ctx.db
        .selectFrom('events')
        .select(['type', 'actor'])
        .where('id', '>', Number(lastEvent?.id ?? 0))
        .orderBy('id')
        .execute()
      const types = events.map((event) => event.type)
      assert.ok(types.includes('client.created') && types.includes('lead.created'), types.join(','))
      assert.equal(types.filter((type) => type === 'lead.activity_added').length >= 3, true)
      for (const event of events) assert.equal((event.actor as { type: string }).type, 'whatsapp')

      // The same notification again (Meta retries): nothing changes.
      const again = await deliver(body)
      assert.equal(again.statusCode, 200)
      assert.deepEqual(again.json(), { messages: 3, stored: 0, refused: 0, statuses: 0, updated: 0 })
      assert.deepEqual(await counts(), after)
    })

    it('refuses a missing or wrong signature with 401 and writes nothing', async () => {
      const waId = nextWaId()
      const value = notification([
        change({ contacts: [contact(waId, 'Zoë Ærø')], messages: [textMessage(waId, 'hola')] }),
      ])
      const body = metaJson(value)
      const before = await counts()
      const cases: [string, string | null, string][] = [
        ['no signature', null, body],
        ['another secret', signatureOf(body, 'not-the-app-secret'), body],
        ['sha1 form', `sha1=${createHmac('sha1', APP_SECRET).update(body).digest('hex')}`, body],
        ['not hex', 'sha256=zz', body],
        // Signed over JSON re-serialised with the characters unescaped: not the bytes that came.
        ['re-serialised body', signatureOf(JSON.stringify(value)), body],
        ['body changed after signing', signatureOf(body), body.replace('hola', 'hole')],
      ]
      for (const [label, signature, sent] of cases) {
        const response = await deliver(sent, signature)
        assert.equal(response.statusCode, 401, `${label}: ${response.body}`)
        assert.equal(problemOf(response).code, 'invalid_signature', label)
      }
      assert.deepEqual(await counts(), before)
      assert.equal(await clientByPhone(`+${waId}`), undefined)
    })

    it('refuses a signed body of the wrong shape with a 400 naming the field, and an oversized one with 413', async () => {
      const before = await counts()
      const bad = metaJson({
        object: 'whatsapp_business_account',
        entry: [{ id: '1', changes: [change({ messages: [{ id: 'x', type: 'text', timestamp: now() } as Message] })] }],
      })
      const response = await deliver(bad)
      assert.equal(response.statusCode, 400, response.body)
      assert.ok(
        problemOf(response).errors?.some(
          (error) => error.field.endsWith('messages/0/from') || error.field.includes('from'),
        ),
      )
      const notJson = await deliver('{"object":')
      assert.equal(notJson.statusCode, 400, notJson.body)
      const huge = `{"object":"${'x'.repeat(3 * 1024 * 1024)}","entry":[]}`
      const tooLarge = await deliver(huge)
      assert.equal(tooLarge.statusCode, 413)
      assert.deepEqual(await counts(), before)
    })

    it('gives two messages of a new number arriving at once (one of them twice) one client, one lead and two activities', async () => {
      const waId = nextWaId()
      const first = metaJson(
        notification([change({ contacts: [contact(waId, 'Luis')], messages: [textMessage(waId, 'uno')] })]),
      )
      const second = metaJson(
        notification([change({ contacts: [contact(waId, 'Luis')], messages: [textMessage(waId, 'dos')] })]),
      )
      // The first one twice at once as well, as Meta may redeliver while the first delivery is running.
      const answers = await Promise.all([deliver(first), deliver(second), deliver(first)])
      for (const answer of answers) assert.equal(answer.statusCode, 200, answer.body)
      assert.equal(
        answers.reduce((sum, answer) => sum + answer.json().stored, 0),
        2,
      )
      const clients = await ctx.db.selectFrom('clients').select('id').where('phone', '=', `+${waId}`).execute()
      assert.equal(clients.length, 1)
      const leads = await leadsOf(clients[0]?.id as number)
      assert.equal(leads.length, 1)
      const messages = (await activitiesOf(leads[0]?.id as number)).filter((activity) => activity.type === 'whatsapp')
      assert.deepEqual(messages.map((activity) => activity.body).sort(), ['dos', 'uno'])
    })

    it('finds the Brazilian client stored with the ninth digit from a wa_id without it, and uses its open lead', async () => {
      const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
        contact_name: 'Mariana Souza',
        phone: '+55 11 98765-4321',
      })
      assert.equal(client.statusCode, 201, client.body)
      assert.equal(client.json().phone, '+5511987654321')
      const older = await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: client.json().id, channel: 'web' })
      const open = await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: client.json().id, channel: 'web' })
      const closed = await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: client.json().id, channel: 'web' })
      await ctx.as(ctx.adminToken, 'PATCH', `/leads/${closed.json().id}/status`, { status: 'closed' })
      assert.ok(older.json().id < open.json().id)
      const before = await counts()
      // Meta's wa_id for an account made before the ninth digit: 55 11 8765-4321.
      const message = textMessage('551187654321', 'Olá, tudo bem?')
      const response = await deliver(
        metaJson(notification([change({ contacts: [contact('551187654321', 'Mariana')], messages: [message] })])),
      )
      assert.equal(response.statusCode, 200, response.body)
      const after = await counts()
      assert.equal(after.clients, before.clients, 'no new client')
      assert.equal(after.leads, before.leads, 'no new lead')
      const activities = await activitiesOf(open.json().id)
      assert.deepEqual(
        activities.filter((activity) => activity.type === 'whatsapp').map((activity) => activity.body),
        ['Olá, tudo bem?'],
        'the message went to the most recent open lead',
      )
    })

    it('answers 200 for a sender no client can be made of, stores the other messages, and logs it', async () => {
      const good = nextWaId()
      const before = await counts()
      // +1 555 123 4567: a fictional range, which libphonenumber refuses as a client's phone.
      const body = metaJson(
        notification([
          change({ contacts: [contact('15551234567', 'Ficción')], messages: [textMessage('15551234567', 'hola')] }),
          change({ contacts: [contact(good, 'Real')], messages: [textMessage(good, 'hola')] }),
        ]),
      )
      const response = await deliver(body)
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(response.json(), { messages: 2, stored: 1, refused: 1, statuses: 0, updated: 0 })
      assert.equal(await clientByPhone('+15551234567'), undefined)
      assert.equal((await counts()).clients, before.clients + 1)
    })

    it('hands a new WhatsApp lead out by the assignment rules', async () => {
      const rules = await ctx.as(ctx.adminToken, 'PUT', '/assignment-rules', { mode: 'round_robin', users: [other.id] })
      assert.equal(rules.statusCode, 200, rules.body)
      try {
        const waId = nextWaId()
        const response = await deliver(
          metaJson(
            notification([change({ contacts: [contact(waId, 'Rita')], messages: [textMessage(waId, 'hola')] })]),
          ),
        )
        assert.equal(response.statusCode, 200, response.body)
        const client = await clientByPhone(`+${waId}`)
        const [lead] = await leadsOf(client?.id as number)
        assert.equal(lead?.assigned_to, other.id)
      } finally {
        await ctx.as(ctx.adminToken, 'PUT', '/assignment-rules', { mode: 'none', users: [] })
      }
    })

    it('names a client without a profile name after the number', async () => {
      const waId = nextWaId()
      const response = await deliver(
        metaJson(notification([change({ contacts: [contact(waId)], messages: [textMessage(waId, 'hola')] })])),
      )
      assert.equal(response.statusCode, 200, response.body)
      assert.equal((await clientByPhone(`+${waId}`))?.contact_name, `+${waId}`)
      // A profile name longer than a client's name may be is cut, not refused.
      const longId = nextWaId()
      const long = 'Ñ'.repeat(250)
      const answer = await deliver(
        metaJson(
          notification([change({ contacts: [contact(longId, long)], messages: [textMessage(longId, 'hola')] })]),
        ),
      )
      assert.equal(answer.statusCode, 200, answer.body)
      assert.equal((await clientByPhone(`+${longId}`))?.contact_name, 'Ñ'.repeat(200))
    })
  })

  describe('sending from a lead', () => {
    it('sends text within the window with the bearer token and Meta’s JSON shape, and records it as sent', async () => {
      const { leadId, phone } = await leadInWindow()
      const sent = graph.received.length
      const response = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, {
        text: 'Hola Ana, ¿cuándo podemos hablar?',
      })
      assert.equal(response.statusCode, 201, response.body)
      const request = graph.received[sent]
      assert.ok(request)
      assert.equal(request.path, `/v21.0/${graph.phoneNumberId}/messages`)
      assert.equal(request.headers.authorization, `Bearer ${graph.accessToken}`)
      assert.match(String(request.headers['content-type']), /^application\/json/)
      assert.deepEqual(request.json, {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to: phone,
        type: 'text',
        text: { preview_url: false, body: 'Hola Ana, ¿cuándo podemos hablar?' },
      })
      const activity = response.json()
      assert.equal(response.headers.location, `/leads/${leadId}/activities/${activity.id}`)
      assert.equal(activity.type, 'whatsapp')
      assert.equal(activity.direction, 'outbound')
      assert.equal(activity.created_by, owner.id)
      assert.equal(activity.meta.state, 'sent')
      assert.equal(activity.meta.message_id, graph.sentIds.at(-1))
      const row = await ctx.db
        .selectFrom('lead_activities')
        .selectAll()
        .where('id', '=', activity.id)
        .executeTakeFirstOrThrow()
      assert.equal(row.external_id, graph.sentIds.at(-1))
      // A retry with the same Idempotency-Key gets the first answer, and Meta gets nothing more.
      const retry = () =>
        ctx.inject({
          method: 'POST',
          url: `/leads/${leadId}/whatsapp`,
          headers: { authorization: `Bearer ${owner.token}`, 'idempotency-key': `send-${leadId}` },
          payload: { text: 'Una sola vez' },
        })
      const first = await retry()
      assert.equal(first.statusCode, 201, first.body)
      const sentOnce = graph.received.length
      const replayed = await retry()
      assert.equal(replayed.statusCode, 201)
      assert.equal(replayed.headers['idempotent-replayed'], 'true')
      assert.equal(replayed.json().id, first.json().id)
      assert.equal(graph.received.length, sentOnce)
      // Another sales user does not see the lead: 404, and nothing goes out.
      const before = graph.received.length
      const refused = await ctx.as(other.token, 'POST', `/leads/${leadId}/whatsapp`, { text: 'hola' })
      assert.equal(refused.statusCode, 404)
      assert.equal(graph.received.length, before)
    })

    it('refuses free text outside the 24-hour window with 409, and sends a template there', async () => {
      const { leadId, phone } = await leadInWindow()
      await ctx.db
        .updateTable('lead_activities')
        .set({ occurred_at: sql`now() - interval '25 hours'` })
        .where('lead_id', '=', leadId)
        .where('direction', '=', 'inbound')
        .execute()
      const before = { requests: graph.received.length, activities: (await activitiesOf(leadId)).length }
      const refused = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, { text: 'hola otra vez' })
      assert.equal(refused.statusCode, 409, refused.body)
      assert.equal(problemOf(refused).code, 'outside_service_window')
      assert.equal(graph.received.length, before.requests, 'nothing was sent to Meta')
      assert.equal((await activitiesOf(leadId)).length, before.activities)

      const template = {
        name: 'seguimiento_cotizacion',
        language: 'es',
        components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }],
      }
      const response = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, { template })
      assert.equal(response.statusCode, 201, response.body)
      assert.deepEqual(graph.received.at(-1)?.json, {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to: phone,
        type: 'template',
        template: { name: template.name, language: { code: 'es' }, components: template.components },
      })
      assert.equal(response.json().meta.state, 'sent')

      // A lead whose client never wrote: only a template.
      const quiet = await ctx.as(ctx.adminToken, 'POST', '/clients', {
        contact_name: 'Sin Mensajes',
        phone: '+584241999001',
      })
      const quietLead = await ctx.as(ctx.adminToken, 'POST', '/leads', {
        client_id: quiet.json().id,
        channel: 'manual',
      })
      const never = await ctx.as(ctx.adminToken, 'POST', `/leads/${quietLead.json().id}/whatsapp`, { text: 'hola' })
      assert.equal(never.statusCode, 409)
    })

    it('answers a Graph API error with 502 and Meta’s code and message, and records nothing', async () => {
      const { leadId } = await leadInWindow()
      const before = { activities: (await activitiesOf(leadId)).length, audit: await count('audit_logs') }
      graph.refuse = {
        status: 400,
        code: 131026,
        message: '(#131026) Message undeliverable',
        details:
          'Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.',
      }
      try {
        const response = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, { text: '¿Sigue interesado?' })
        assert.equal(response.statusCode, 502, response.body)
        const problem = problemOf(response)
        assert.equal(problem.code, 'whatsapp_send_failed')
        assert.equal(problem.meta_code, 131026)
        assert.equal(problem.meta_message, '(#131026) Message undeliverable')
        assert.ok(!response.body.includes(graph.accessToken))
      } finally {
        graph.refuse = undefined
      }
      assert.equal((await activitiesOf(leadId)).length, before.activities)
      assert.equal(await count('audit_logs'), before.audit)
    })

    it('cuts an over-long Graph API error to 300 characters in the 502 answer', async () => {
      const { leadId } = await leadInWindow()
      graph.refuse = { status: 400, code: 100, message: `(#100) ${'x'.repeat(100_000)}`, details: 'd'.repeat(100_000) }
      try {
        const response = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, { text: 'hola' })
        assert.equal(response.statusCode, 502)
        const problem = problemOf(response)
        assert.equal(problem.code, 'whatsapp_send_failed')
        assert.equal(problem.meta_code, 100)
        assert.equal(String(problem.meta_message).length, 300)
        assert.ok(String(problem.meta_message).startsWith('(#100) xxx'))
        assert.equal(String(problem.meta_details).length, 300)
        assert.ok(response.body.length < 2_000, `a body of ${response.body.length} characters`)
      } finally {
        graph.refuse = undefined
      }
    })

    it('answers 502 without Meta’s code when the Graph API gives no usable answer, and records nothing', async () => {
      const { leadId } = await leadInWindow()
      const before = (await activitiesOf(leadId)).length
      const cases = [
        { status: 502, body: '<html>Bad Gateway</html>' },
        { status: 200, body: '{"messaging_product":"whatsapp","messages":[]}' },
      ]
      try {
        for (const rawAnswer of cases) {
          graph.rawAnswer = rawAnswer
          const response = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, { text: 'hola' })
          assert.equal(response.statusCode, 502, response.body)
          assert.equal(problemOf(response).code, 'whatsapp_send_failed')
          assert.equal(problemOf(response).meta_code, null)
        }
      } finally {
        graph.rawAnswer = undefined
      }
      assert.equal((await activitiesOf(leadId)).length, before)
    })

    it('refuses a body with both text and template, or neither, naming the field', async () => {
      const { leadId } = await leadInWindow()
      const both = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, {
        text: 'a',
        template: { name: 'x', language: 'es' },
      })
      assert.equal(both.statusCode, 400)
      const neither = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, {})
      assert.equal(neither.statusCode, 400)
      assert.equal(problemOf(neither).errors?.[0]?.field, 'text')
    })
  })

  describe('delivery statuses', () => {
    it('moves an outbound message forward only: sent → delivered → read, and failed keeps Meta’s error', async () => {
      const { leadId } = await leadInWindow()
      const send = async () => {
        const response = await ctx.as(owner.token, 'POST', `/leads/${leadId}/whatsapp`, {
          text: 'Gracias por escribir',
        })
        assert.equal(response.statusCode, 201, response.body)
        return { activityId: response.json().id as number, messageId: response.json().meta.message_id as string }
      }
      const stateOf = async (activityId: number) =>
        (
          await ctx.db
            .selectFrom('lead_activities')
            .select('meta')
            .where('id', '=', activityId)
            .executeTakeFirstOrThrow()
        ).meta as Record<string, unknown>
      const report = async (...statuses: unknown[]) => {
        const response = await deliver(metaJson(notification([change({ statuses })])))
        assert.equal(response.statusCode, 200, response.body)
        return response.json()
      }

      const read = await send()
      assert.deepEqual(await report(statusOf(read.messageId, 'delivered')), {
        messages: 0,
        stored: 0,
        refused: 0,
        statuses: 1,
        updated: 1,
      })
      assert.equal((await stateOf(read.activityId)).state, 'delivered')
      // A late `sent` does not move it back; `read` moves it on; a late `delivered` is ignored.
      await report(statusOf(read.messageId, 'sent'))
      assert.equal((await stateOf(read.activityId)).state, 'delivered')
      await report(statusOf(read.messageId, 'read'), statusOf(read.messageId, 'delivered'))
      assert.equal((await stateOf(read.activityId)).state, 'read')

      const failed = await send()
      const error = {
        code: 131047,
        title: 'Re-engagement message',
        message: 'Re-engagement message',
        error_data: {
          details:
            'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
        },
        href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
      }
      const audit = await count('audit_logs')
      await report(statusOf(failed.messageId, 'failed', { errors: [error] }))
      const meta = await stateOf(failed.activityId)
      assert.equal(meta.state, 'failed')
      assert.deepEqual(meta.error, {
        code: 131047,
        title: error.title,
        message: error.message,
        details: error.error_data.details,
      })
      assert.equal(await count('audit_logs'), audit + 1, 'the change has its audit row')
      await report(statusOf(failed.messageId, 'delivered'), statusOf(failed.messageId, 'read'))
      assert.equal((await stateOf(failed.activityId)).state, 'failed')
      assert.equal(await count('audit_logs'), audit + 1)

      // An over-long error of Meta's is kept cut to 300 characters, in the activity and its audit row.
      const long = await send()
      const longError = { code: 131000, message: 'm'.repeat(100_000), error_data: { details: 'd'.repeat(100_000) } }
      await report(statusOf(long.messageId, 'failed', { errors: [longError] }))
      const longMeta = await stateOf(long.activityId)
      assert.deepEqual(longMeta.error, {
        code: 131000,
        title: null,
        message: `${'m'.repeat(299)}…`,
        details: `${'d'.repeat(299)}…`,
      })
      const [, stored] = await ctx.auditRows('lead_activities', long.activityId)
      assert.ok(JSON.stringify(stored).length < 3_000, 'the audit row holds the cut texts')

      // A status of a message this CRM never sent changes nothing.
      assert.deepEqual(await report(statusOf('wamid.unknown', 'read')), {
        messages: 0,
        stored: 0,
        refused: 0,
        statuses: 1,
        updated: 0,
      })
    })
  })
})
