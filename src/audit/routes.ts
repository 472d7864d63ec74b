import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { problems, ref } from '../http/schemas.js'
import { listAuditLogs } from './read.js'
import { AuditLogPageSchema, AuditLogQuery } from './schemas.js'

export const auditRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRequest', app.requireRole('admin'))

  app.get(
    '/audit-logs',
    {
      schema: {
        operationId: 'listAuditLogs',
        tags: ['audit'],
        summary: 'Read the audit log, newest first',
        querystring: AuditLogQuery,
        response: { 200: ref(AuditLogPageSchema), ...problems(403) },
      },
    },
    async (request) => listAuditLogs(db, request.query),
  )
}
