import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { checkWebhookTarget } from './address.js'
import { pingWebhook, retryDelivery, type WebhookJobOptions } from './jobs.js'
import {
  DeliveryPageSchema,
  DeliveryParams,
  DeliverySchema,
  PageOnlyQuery,
  PingResultSchema,
  WebhookCreateSchema,
  WebhookPageSchema,
  WebhookSchema,
  WebhookUpdateSchema,
  WebhookWithSecretSchema,
} from './schemas.js'
import {
  createWebhook,
  deleteWebhook,
  getDelivery,
  getWebhook,
  listDeliveries,
  listWebhooks,
  rotateWebhookSecret,
  updateWebhook,
} from './service.js'

const adminErrors = problems(403)
const ADMIN_ONLY = 'Admin only.'

export const webhookRoutes: FastifyPluginAsyncTypebox<{ db: Database; jobs: WebhookJobOptions }> = async (
  app,
  { db, jobs },
) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRequest', app.requireRole('admin'))

  // Checked before the transaction opens: a DNS lookup must not hold the database.
  const checkUrl = async (url: string) => {
    await checkWebhookTarget(url, jobs.allowPrivateNetworks)
  }

  app.post(
    '/webhooks',
    {
      // No Idempotency-Key: a replay would keep the signing secret at rest and show it again.
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'createWebhook',
        tags: ['webhooks'],
        summary: 'Register a webhook; the answer holds its signing secret, shown only here',
        description: `${ADMIN_ONLY} A URL whose host is or resolves to a loopback, private, link-local or unique-local address is a 400 webhook_url_not_allowed.`,
        body: ref(WebhookCreateSchema),
        response: { 201: ref(WebhookWithSecretSchema), ...adminErrors },
      },
    },
    async (request, reply) => {
      await checkUrl(request.body.url)
      const webhook = await db.transaction().execute((trx) => createWebhook(trx, request.actor, request.body))
      reply.header('cache-control', 'no-store')
      return reply.code(201).header('location', `/webhooks/${webhook.id}`).send(webhook)
    },
  )

  app.get(
    '/webhooks',
    {
      schema: {
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        summary: 'List webhooks (never their secrets)',
        description: ADMIN_ONLY,
        querystring: PageOnlyQuery,
        response: { 200: ref(WebhookPageSchema), ...adminErrors },
      },
    },
    async (request) => listWebhooks(db, request.query),
  )

  app.get(
    '/webhooks/:id',
    {
      schema: {
        operationId: 'getWebhook',
        tags: ['webhooks'],
        summary: 'Read a webhook (never its secret)',
        description: ADMIN_ONLY,
        params: IdParams,
        response: { 200: ref(WebhookSchema), ...problems(403, 404) },
      },
    },
    async (request) => getWebhook(db, request.params.id),
  )

  app.patch(
    '/webhooks/:id',
    {
      // A key could send the events to a URL of its own, for as long as the webhook lives.
      config: { apiKeys: ['url'] },
      schema: {
        operationId: 'updateWebhook',
        tags: ['webhooks'],
        summary: 'Change a webhook; is_active: true turns a disabled one back on',
        description: ADMIN_ONLY,
        params: IdParams,
        body: ref(WebhookUpdateSchema),
        response: { 200: ref(WebhookSchema), ...problems(403, 404) },
      },
    },
    async (request) => {
      if (request.body.url !== undefined) await checkUrl(request.body.url)
      return db.transaction().execute((trx) => updateWebhook(trx, request.actor, request.params.id, request.body))
    },
  )

  app.delete(
    '/webhooks/:id',
    {
      schema: {
        operationId: 'deleteWebhook',
        tags: ['webhooks'],
        summary: 'Delete a webhook and its deliveries',
        description: ADMIN_ONLY,
        params: IdParams,
        response: { 204: Type.Null(), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      await db.transaction().execute((trx) => deleteWebhook(trx, request.actor, request.params.id))
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'rotateWebhookSecret',
        tags: ['webhooks'],
        summary: 'Replace the signing secret; the answer holds the new one, shown only here',
        description: `${ADMIN_ONLY} Deliveries signed from now on use the new secret.`,
        params: IdParams,
        response: { 200: ref(WebhookWithSecretSchema), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return db.transaction().execute((trx) => rotateWebhookSecret(trx, request.actor, request.params.id))
    },
  )

  app.get(
    '/webhooks/:id/deliveries',
    {
      schema: {
        operationId: 'listWebhookDeliveries',
        tags: ['webhooks'],
        summary: "A webhook's deliveries, newest first",
        description: ADMIN_ONLY,
        params: IdParams,
        querystring: PageOnlyQuery,
        response: { 200: ref(DeliveryPageSchema), ...problems(403, 404) },
      },
    },
    async (request) => listDeliveries(db, request.params.id, request.query),
  )

  app.post(
    '/webhooks/:id/deliveries/:delivery_id/retry',
    {
      schema: {
        operationId: 'retryWebhookDelivery',
        tags: ['webhooks'],
        summary: 'Attempt a delivery again now, and answer it as it is after the attempt',
        description: `${ADMIN_ONLY} 409 delivery_in_progress while a worker is attempting it.`,
        params: DeliveryParams,
        response: { 200: ref(DeliverySchema), ...problems(403, 404, 409) },
      },
    },
    async (request) => {
      const { id, delivery_id: deliveryId } = request.params
      await retryDelivery(db, id, deliveryId, jobs)
      return getDelivery(db, id, deliveryId)
    },
  )

  app.post(
    '/webhooks/:id/ping',
    {
      schema: {
        operationId: 'pingWebhook',
        tags: ['webhooks'],
        summary: 'Send a signed webhook.ping event now and answer its outcome',
        description: ADMIN_ONLY,
        params: IdParams,
        response: { 200: ref(PingResultSchema), ...problems(403, 404) },
      },
    },
    async (request) => {
      const outcome = await pingWebhook(db, request.actor, request.params.id, jobs)
      return { delivered: outcome.ok, status: outcome.status, error: outcome.error, duration_ms: outcome.durationMs }
    },
  )
}
