import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import {
  ActivityCreateSchema,
  ActivityListQuery,
  ActivityPageSchema,
  ActivityParams,
  ActivitySchema,
} from './schemas.js'
import { addActivity, deleteActivity, getActivity, listActivities } from './service.js'

const SCOPE = 'Sales users: on the leads assigned to them only (others are 404).'

export const activityRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/leads/:id/activities',
    {
      schema: {
        operationId: 'listLeadActivities',
        tags: ['activities'],
        summary: "A lead's timeline, newest first",
        description: `Notes, calls, meetings and emails people added; WhatsApp messages; form submissions; status changes and assignments. ${SCOPE}`,
        params: IdParams,
        querystring: ActivityListQuery,
        response: { 200: ref(ActivityPageSchema), ...problems(404) },
      },
    },
    async (request) => listActivities(db, request.actor, request.params.id, request.query),
  )

  app.post(
    '/leads/:id/activities',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'addLeadActivity',
        tags: ['activities'],
        summary: 'Add a note, call, meeting or email to a lead',
        description: SCOPE,
        params: IdParams,
        body: ref(ActivityCreateSchema),
        response: { 201: ref(ActivitySchema), ...problems(404) },
      },
    },
    async (request, reply) => {
      const activity = await db
        .transaction()
        .execute((trx) => addActivity(trx, request.actor, { lead_id: request.params.id, ...request.body }))
      return reply.code(201).header('location', `/leads/${activity.lead_id}/activities/${activity.id}`).send(activity)
    },
  )

  app.get(
    '/leads/:id/activities/:activity_id',
    {
      schema: {
        operationId: 'getLeadActivity',
        tags: ['activities'],
        summary: 'Read one activity of a lead',
        description: SCOPE,
        params: ActivityParams,
        response: { 200: ref(ActivitySchema), ...problems(404) },
      },
    },
    async (request) =>
      getActivity(db, request.actor, { lead_id: request.params.id, activity_id: request.params.activity_id }),
  )

  app.delete(
    '/leads/:id/activities/:activity_id',
    {
      schema: {
        operationId: 'deleteLeadActivity',
        tags: ['activities'],
        summary: 'Delete a note, call, meeting or email',
        description: `Its author, admin and management; what the system wrote (messages, forms, status changes, assignments) is a 409 activity_not_deletable. ${SCOPE}`,
        params: ActivityParams,
        response: { 204: Type.Null(), ...problems(403, 404, 409) },
      },
    },
    async (request, reply) => {
      await db
        .transaction()
        .execute((trx) =>
          deleteActivity(trx, request.actor, { lead_id: request.params.id, activity_id: request.params.activity_id }),
        )
      return reply.code(204).send(null)
    },
  )
}
