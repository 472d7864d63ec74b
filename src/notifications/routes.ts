import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { ProblemSchema, ref } from '../http/schemas.js'
import { NotificationSettingsSchema, NotificationSettingsUpdateSchema } from './schemas.js'
import { getNotificationSettings, updateNotificationSettings } from './service.js'

const problem = ref(ProblemSchema)

export const notificationRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/auth/me/notifications',
    {
      schema: {
        operationId: 'getOwnNotificationSettings',
        tags: ['auth'],
        summary: 'Which mails you get (all on by default)',
        response: { 200: ref(NotificationSettingsSchema), 401: problem },
      },
    },
    async (request) => getNotificationSettings(db, request.actor.userId),
  )

  app.patch(
    '/auth/me/notifications',
    {
      schema: {
        operationId: 'updateOwnNotificationSettings',
        tags: ['auth'],
        summary: 'Turn your notification mails on or off',
        body: ref(NotificationSettingsUpdateSchema),
        response: { 200: ref(NotificationSettingsSchema), 400: problem, 401: problem },
      },
    },
    async (request) => db.transaction().execute((trx) => updateNotificationSettings(trx, request.actor, request.body)),
  )
}
