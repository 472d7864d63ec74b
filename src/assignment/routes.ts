import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { problems, ref } from '../http/schemas.js'
import { AssignmentRulesSchema } from './schemas.js'
import { getAssignmentRules, replaceAssignmentRules } from './service.js'

export const assignmentRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRequest', app.requireRole('admin'))

  app.get(
    '/assignment-rules',
    {
      schema: {
        operationId: 'getAssignmentRules',
        tags: ['assignment'],
        summary: 'How inbound leads (web forms, WhatsApp) are handed out',
        description: 'Admin only.',
        response: { 200: ref(AssignmentRulesSchema), ...problems(403) },
      },
    },
    async () => getAssignmentRules(db),
  )

  app.put(
    '/assignment-rules',
    {
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'replaceAssignmentRules',
        tags: ['assignment'],
        summary: 'Set how inbound leads are handed out',
        description:
          'Admin only. round_robin gives each new inbound lead to the next active user of the list, in turn, fairly across concurrent requests and API instances. A web form with its own assign_to (an active user) uses that instead.',
        body: ref(AssignmentRulesSchema),
        response: { 200: ref(AssignmentRulesSchema), ...problems(403) },
      },
    },
    async (request) => db.transaction().execute((trx) => replaceAssignmentRules(trx, request.actor, request.body)),
  )
}
