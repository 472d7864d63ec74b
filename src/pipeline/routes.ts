import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { problems, ref } from '../http/schemas.js'
import { PipelineSettingsSchema, PipelineSettingsUpdateSchema } from './schemas.js'
import { getPipelineSettings, replacePipelineSettings } from './service.js'

export const pipelineRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/pipeline-settings',
    {
      schema: {
        operationId: 'getPipelineSettings',
        tags: ['pipeline'],
        summary: 'When leads go stale, the business hours, holidays and response target',
        description: 'Anyone signed in.',
        response: { 200: ref(PipelineSettingsSchema) },
      },
    },
    async () => getPipelineSettings(db),
  )

  app.put(
    '/pipeline-settings',
    {
      onRequest: app.requireRole('admin'),
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'replacePipelineSettings',
        tags: ['pipeline'],
        summary: 'Set when leads go stale, the business hours, holidays and response target',
        description:
          'Admin only. Replaces the whole settings: a field left out returns to its default. Business hours change how later first responses are counted, not those already recorded.',
        body: ref(PipelineSettingsUpdateSchema),
        response: { 200: ref(PipelineSettingsSchema), ...problems(403) },
      },
    },
    async (request) => db.transaction().execute((trx) => replacePipelineSettings(trx, request.actor, request.body)),
  )
}
