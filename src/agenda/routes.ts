import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { ref } from '../http/schemas.js'
import { callerTimeZone } from '../tasks/queries.js'
import { getAgenda } from './queries.js'
import { AgendaSchema } from './schemas.js'

export const agendaRoutes: FastifyPluginAsyncTypebox<{ db: Database; defaultTimeZone: string }> = async (
  app,
  { db, defaultTimeZone },
) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/me/agenda',
    {
      schema: {
        operationId: 'getAgenda',
        tags: ['tasks'],
        summary: 'The caller’s day: overdue tasks, tasks due today, leads awaiting a first response, stale leads',
        description:
          'Any role, always the caller’s own: tasks and leads assigned to them. Each list holds what its filter on GET /tasks or GET /leads lists, and its total.',
        response: { 200: ref(AgendaSchema) },
      },
    },
    async (request) => getAgenda(db, request.actor, await callerTimeZone(db, request.actor.userId, defaultTimeZone)),
  )
}
