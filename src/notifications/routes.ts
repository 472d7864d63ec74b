import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { ref } from '../http/schemas.js'
import { getNotificationSettings, updateNotificationSettings } from '../users/notification-settings.js'
import { NotificationSettingsSchema, NotificationSettingsUpdateSchema } from './schemas.js'

export const notificationRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/auth/me/notifications',
    {
      schema: {
        operationId: 'getOwnNotificationSettings',
        tags: ['auth'],
        summary: 'Which mails you get (all on by default but the daily digest)',
        response: { 200: ref(NotificationSettingsSchema) },
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
        response: { 200: ref(NotificationSettingsSchema) },
      },
    },
    async (request) => db.transaction().execute((trx) => updateNotificationSettings(trx, request.actor, request.body)),
  )
}
