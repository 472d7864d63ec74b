import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { ApiKeyCreateSchema, ApiKeyListQuery, ApiKeyPageSchema, ApiKeyWithKeySchema } from './schemas.js'
import { createApiKey, deleteApiKey, listApiKeys } from './service.js'

export const apiKeyRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  app.post(
    '/auth/api-keys',
    {
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'createApiKey',
        tags: ['auth'],
        summary: 'Make an API key for yourself; the answer holds the key, shown only here',
        description: 'The key acts with your role; a ["read"] key may only GET.',
        body: ref(ApiKeyCreateSchema),
        response: { 201: ref(ApiKeyWithKeySchema), ...problems(403) },
      },
    },
    async (request, reply) => {
      const apiKey = await db.transaction().execute((trx) => createApiKey(trx, request.actor, request.body))
      reply.header('cache-control', 'no-store')
      return reply.code(201).header('location', `/auth/api-keys/${apiKey.id}`).send(apiKey)
    },
  )

  app.get(
    '/auth/api-keys',
    {
      schema: {
        operationId: 'listApiKeys',
        tags: ['auth'],
        summary: 'Your API keys (admins: everyone’s with all=true), never the keys themselves',
        querystring: ApiKeyListQuery,
        response: { 200: ref(ApiKeyPageSchema), ...problems(403) },
      },
    },
    async (request) => listApiKeys(db, request.actor, request.query),
  )

  app.delete(
    '/auth/api-keys/:id',
    {
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'deleteApiKey',
        tags: ['auth'],
        summary: 'Revoke an API key: refused from the next request on, on every instance',
        description: 'Your own keys; admins revoke anyone’s (403 for others).',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      await db.transaction().execute((trx) => deleteApiKey(trx, request.actor, request.params.id))
      return reply.code(204).send(null)
    },
  )
}
