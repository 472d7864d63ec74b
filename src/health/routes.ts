import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import type { Database } from '../db/database.js'

const Status = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })

export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.get(
    '/health',
    {
      schema: {
        operationId: 'getHealth',
        tags: ['operations'],
        summary: 'The process is alive',
        security: [],
        response: { 200: Status },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/ready',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['operations'],
        summary: 'The database answers',
        security: [],
        response: { 200: Status },
      },
    },
    async () => {
      await sql`select 1`.execute(db)
      return { status: 'ok' as const }
    },
  )
}
