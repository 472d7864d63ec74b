import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { problems, ref } from '../http/schemas.js'
import { TrashItemParams, TrashListQuery, TrashPageSchema } from './schemas.js'
import { listTrash, purgeTrashed } from './service.js'

/** The trash of clients and leads: list and purge. Restoring is POST /clients/{id}/restore and /leads/{id}/restore. */
export const trashRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/trash',
    {
      onRequest: app.requireRole('admin', 'management'),
      schema: {
        operationId: 'listTrash',
        tags: ['trash'],
        summary: 'List the trashed clients or leads, most recently trashed first',
        querystring: TrashListQuery,
        response: { 200: ref(TrashPageSchema), ...problems(403) },
      },
    },
    async (request) => {
      const { type, ...page } = request.query
      return listTrash(db, type, page)
    },
  )

  app.delete(
    '/trash/:type/:id',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        operationId: 'purgeTrashed',
        tags: ['trash'],
        summary: 'Delete a trashed client (with its trashed leads) or lead for good',
        description: 'Writes a purge audit row holding the row removed. A row not in the trash is a 404.',
        params: TrashItemParams,
        response: { 204: Type.Null(), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      const { type, id } = request.params
      await db.transaction().execute((trx) => purgeTrashed(trx, request.actor, type, id))
      return reply.code(204).send(null)
    },
  )
}
