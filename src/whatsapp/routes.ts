import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ActivitySchema } from '../activities/schemas.js'
import type { ClientRules } from '../clients/queries.js'
import type { WhatsAppConfig } from '../config.js'
import type { Database } from '../db/database.js'
import { UnauthorizedError, ValidationError } from '../errors/domain.js'
import { sendProblem } from '../http/problem.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { receiveInbound } from '../inbound/service.js'
import { getLead } from '../leads/queries.js'
import { type OutboundMessage, sendWhatsAppMessage } from './graph.js'
import {
  VerificationQuery,
  WebhookResultSchema,
  type WhatsAppNotification,
  WhatsAppNotificationSchema,
  type WhatsAppSend,
  WhatsAppSendSchema,
} from './schemas.js'
import {
  inboundOf,
  isMessageStored,
  notificationItems,
  recordOutbound,
  requireServiceWindow,
  updateDeliveryState,
  whatsappActor,
} from './service.js'
import { hasValidSignature, sameSecret } from './signature.js'

export interface WhatsAppRouteOptions {
  db: Database
  /** Unset: every WhatsApp route answers 404. */
  whatsapp: WhatsAppConfig | undefined
  rules: ClientRules
}

/** Thrown to roll back a message stored meanwhile by a concurrent delivery of the same notification. */
class MessageAlreadyStored extends Error {}

// Meta's documentation: "Webhooks payloads can be up to 3MB".
export const WEBHOOK_BODY_LIMIT = 3 * 1024 * 1024

/** While WhatsApp is not configured its routes do not exist for callers: 404 before anything else. */
function answerNotFoundUnless(app: FastifyInstance, configured: boolean) {
  if (configured) return
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) =>
    sendProblem(reply, {
      status: 404,
      code: 'not_found',
      detail: `No route for ${request.method} ${request.url.split('?')[0]}: WhatsApp is not configured`,
    }),
  )
}

/** Meta's webhook: the verification GET and the signed notification POST. No token: the signature is the credential. */
export const whatsappWebhookRoutes: FastifyPluginAsyncTypebox<WhatsAppRouteOptions> = async (
  app,
  { db, whatsapp, rules },
) => {
  answerNotFoundUnless(app, whatsapp !== undefined)
  // Read only by handlers, which run only when it is set (the hook above answers 404 otherwise).
  const config = whatsapp as WhatsAppConfig
  // In this plugin only, JSON is kept as the bytes that came: the signature is over them.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  )
  const parseJson = app.getDefaultJsonParser('error', 'error')

  app.get(
    '/integrations/whatsapp/webhook',
    {
      schema: {
        operationId: 'verifyWhatsAppWebhook',
        tags: ['whatsapp'],
        summary: "Answer Meta's verification of the webhook URL",
        description:
          'Meta calls it once when the callback URL is saved. With `hub.mode=subscribe` and the configured verify token, the answer is `hub.challenge` as text/plain; anything else is a 403.',
        security: [],
        querystring: VerificationQuery,
        response: {
          200: { description: 'The challenge, as Meta sent it', content: { 'text/plain': { schema: Type.String() } } },
          ...problems(403, 404),
        },
      },
    },
    async (request, reply) => {
      const query = request.query
      const token = query['hub.verify_token'] ?? ''
      const matches = sameSecret(token, config.verifyToken)
      if (query['hub.mode'] !== 'subscribe' || !matches || query['hub.challenge'] === undefined) {
        return sendProblem(reply, { status: 403, code: 'forbidden', detail: 'The verify token does not match' })
      }
      return reply.type('text/plain; charset=utf-8').send(query['hub.challenge'])
    },
  )

  app.post(
    '/integrations/whatsapp/webhook',
    {
      bodyLimit: WEBHOOK_BODY_LIMIT,
      // The signature is checked on the raw bytes, and only then is the body read as JSON (and validated).
      preValidation: async (request) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
        if (!hasValidSignature(raw, request.headers['x-hub-signature-256'], config.appSecret)) {
          throw new UnauthorizedError('Missing or invalid X-Hub-Signature-256', 'invalid_signature')
        }
        request.body = await new Promise((resolve, reject) =>
          parseJson(request, raw.toString('utf8'), (error, parsed) => (error ? reject(error) : resolve(parsed))),
        )
      },
      schema: {
        operationId: 'receiveWhatsAppNotification',
        tags: ['whatsapp'],
        summary: 'Receive messages and delivery statuses from Meta',
        description:
          'Signed by Meta with the app secret: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`; without a valid signature, 401 and nothing is written. Each message of each change of each entry is stored once (by its id), on the sender’s client and open lead (both created when absent); each status moves the delivery state of an outbound message forward.',
        security: [],
        body: ref(WhatsAppNotificationSchema),
        response: { 200: ref(WebhookResultSchema), ...problems(401, 404) },
      },
    },
    async (request) => {
      const { messages, statuses } = notificationItems(request.body as WhatsAppNotification)
      const actor = whatsappActor(config.phoneNumberId, request.id)
      let stored = 0
      let refused = 0
      let updated = 0
      // One transaction per message: a failure leaves the ones before it stored, and Meta's redelivery skips them.
      for (const item of messages) {
        if (await isMessageStored(db, item.message.id)) continue
        try {
          await db.transaction().execute(async (trx) => {
            const { contact, message } = inboundOf(item)
            const { activity } = await receiveInbound(trx, actor, contact, message, rules)
            if (!activity) throw new MessageAlreadyStored(item.message.id)
          })
          stored += 1
        } catch (error) {
          if (error instanceof MessageAlreadyStored) continue
          // A sender no client can be made of (a number libphonenumber refuses): answered, so Meta does not retry it for days.
          if (!(error instanceof ValidationError)) throw error
          refused += 1
          request.log.warn(
            { message_id: item.message.id, fields: error.errors.map((entry) => entry.field) },
            'whatsapp: message not stored',
          )
        }
      }
      for (const status of statuses) {
        if (await db.transaction().execute((trx) => updateDeliveryState(trx, actor, status))) updated += 1
      }
      return { messages: messages.length, stored, refused, statuses: statuses.length, updated }
    },
  )
}

/** Exactly one of `text` and `template`. */
function outboundMessage(body: WhatsAppSend): OutboundMessage {
  if (body.text !== undefined && body.template !== undefined) {
    throw ValidationError.field('template', 'send either text or template, not both')
  }
  if (body.template !== undefined) return { template: body.template }
  if (body.text === undefined) throw ValidationError.field('text', 'is required, unless a template is sent')
  return { text: body.text }
}

/** Sending from a lead: the person acts, through the Graph API. */
export const whatsappSendRoutes: FastifyPluginAsyncTypebox<WhatsAppRouteOptions> = async (app, { db, whatsapp }) => {
  answerNotFoundUnless(app, whatsapp !== undefined)
  const config = whatsapp as WhatsAppConfig
  app.addHook('onRequest', app.authenticate)

  app.post(
    '/leads/:id/whatsapp',
    {
      // A retried request with the same Idempotency-Key gets the first answer: the message is not sent twice.
      config: { idempotent: true },
      schema: {
        operationId: 'sendLeadWhatsApp',
        tags: ['whatsapp'],
        summary: "Send a WhatsApp message to the lead's client",
        description:
          'Free text only within 24 hours of the lead’s last inbound WhatsApp message (else 409 outside_service_window); an approved template at any time. A refusal by the Graph API is a 502 whatsapp_send_failed with Meta’s `meta_code` and `meta_message`, and nothing is recorded. Sales users: their own leads only.',
        params: IdParams,
        body: ref(WhatsAppSendSchema),
        response: { 201: ref(ActivitySchema), ...problems(404, 409, 502) },
      },
    },
    async (request, reply) => {
      const message = outboundMessage(request.body)
      const lead = await getLead(db, request.actor, request.params.id)
      if ('text' in message) await requireServiceWindow(db, lead.id)
      // Outside any transaction: the network must not hold a database connection.
      const messageId = await sendWhatsAppMessage(config, lead.client.phone, message)
      const activity = await db
        .transaction()
        .execute((trx) => recordOutbound(trx, request.actor, lead.id, messageId, message))
      return reply.code(201).header('location', `/leads/${lead.id}/activities/${activity.id}`).send(activity)
    },
  )
}
