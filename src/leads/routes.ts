import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify'
import type { Transaction } from 'kysely'
import { listAuditLogs } from '../audit/read.js'
import { AuditLogPageSchema, HistoryQuery } from '../audit/schemas.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'
import { assertIfMatch, checkIfMatch, etagFor, setETag } from '../http/etag.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { applyView } from '../views/apply.js'
import { runBulk } from './bulk.js'
import { assignLead, changeLeadStatus, createLead, lockLead, restoreLead, trashLead, updateLead } from './commands.js'
import { getLead, type Lead, listLeads } from './queries.js'
import {
  LeadAssignmentSchema,
  LeadBulkResultSchema,
  LeadBulkSchema,
  LeadCreateSchema,
  LeadListQuery,
  LeadPageSchema,
  LeadSchema,
  LeadStatsQuery,
  LeadStatsSchema,
  LeadStatusChangeSchema,
  LeadUpdateSchema,
  MAX_STATS_DAYS,
} from './schemas.js'
import { leadStats } from './stats.js'
import { describeTransitions, LEAD_ACTION_ROLES } from './transitions.js'

/** status and assigned_to have routes of their own: say which, rather than "not an accepted field". */
const pointToOwnRoutes: preValidationHookHandler = async (request) => {
  const body = request.body
  if (typeof body !== 'object' || body === null) return
  const id = (request.params as { id?: string }).id
  const errors = []
  if ('status' in body) errors.push({ field: 'status', message: `is changed with PATCH /leads/${id}/status` })
  if ('assigned_to' in body) errors.push({ field: 'assigned_to', message: `is changed with PATCH /leads/${id}/assign` })
  if (errors.length > 0) throw new ValidationError(errors)
}

export const leadRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)

  /** A change of one lead, in one transaction, made only if its If-Match (when sent) still holds. */
  async function changeLead(
    request: FastifyRequest,
    reply: FastifyReply,
    id: number,
    change: (trx: Transaction<DB>) => Promise<Lead>,
  ): Promise<Lead> {
    const lead = await db.transaction().execute(async (trx) => {
      await checkIfMatch(request, reply, LeadSchema, () => lockLead(trx, request.actor, id))
      return change(trx)
    })
    setETag(reply, LeadSchema, lead)
    return lead
  }

  app.get(
    '/leads',
    {
      preValidation: applyView(db, 'leads'),
      schema: {
        operationId: 'listLeads',
        tags: ['leads'],
        summary: 'List leads (sales users: those assigned to them)',
        querystring: LeadListQuery,
        response: { 200: ref(LeadPageSchema) },
      },
    },
    async (request) => listLeads(db, request.actor, request.query),
  )

  app.post(
    '/leads',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createLead',
        tags: ['leads'],
        summary: 'Create a lead',
        description: 'Sales users create leads assigned to themselves, and may not write admin_notes.',
        body: ref(LeadCreateSchema),
        response: { 201: ref(LeadSchema), ...problems(403) },
      },
    },
    async (request, reply) => {
      const lead = await db.transaction().execute((trx) => createLead(trx, request.actor, request.body))
      return reply.code(201).header('location', `/leads/${lead.id}`).send(lead)
    },
  )

  app.get(
    '/leads/stats',
    {
      preValidation: applyView(db, 'leads'),
      schema: {
        operationId: 'getLeadStats',
        tags: ['leads'],
        summary:
          'Counts by status, channel, assignee and day, and deal values per currency, with the same filters as the list',
        description: `per_day covers created_from..created_to, or the first lead's day to today without them: at most ${MAX_STATS_DAYS} days, a longer range is a 400.`,
        querystring: LeadStatsQuery,
        response: { 200: ref(LeadStatsSchema) },
      },
    },
    async (request) => {
      // The view's filters are in the query by now (applyView): its id is no filter of its own.
      const { view: _view, ...filter } = request.query
      return leadStats(db, request.actor, filter)
    },
  )

  app.get(
    '/leads/:id',
    {
      config: { etag: 'read' },
      schema: {
        operationId: 'getLead',
        tags: ['leads'],
        summary: 'Read a lead',
        params: IdParams,
        response: { 200: ref(LeadSchema), ...problems(404) },
      },
    },
    async (request) => getLead(db, request.actor, request.params.id),
  )

  app.patch(
    '/leads/:id',
    {
      config: { etag: 'write' },
      preValidation: pointToOwnRoutes,
      schema: {
        operationId: 'updateLead',
        tags: ['leads'],
        summary: 'Change a lead’s client, channel, notes or deal (amount, currency, expected close date, lost reason)',
        params: IdParams,
        body: ref(LeadUpdateSchema),
        response: { 200: ref(LeadSchema), ...problems(403, 404) },
      },
    },
    async (request, reply) =>
      changeLead(request, reply, request.params.id, (trx) =>
        updateLead(trx, request.actor, request.params.id, request.body),
      ),
  )

  app.patch(
    '/leads/:id/status',
    {
      config: { etag: 'write' },
      schema: {
        operationId: 'changeLeadStatus',
        tags: ['leads'],
        summary: 'Move a lead to another status',
        description: `${describeTransitions()} Anything else is a 409 invalid_transition listing the allowed next states. Moving to discarded needs a lost_reason from lost_reasons in GET /pipeline-settings (400 naming lost_reason otherwise); reopening clears it.`,
        params: IdParams,
        body: ref(LeadStatusChangeSchema),
        response: { 200: ref(LeadSchema), ...problems(404, 409) },
      },
    },
    async (request, reply) =>
      changeLead(request, reply, request.params.id, (trx) =>
        changeLeadStatus(trx, request.actor, request.params.id, request.body.status, request.body.lost_reason),
      ),
  )

  app.patch(
    '/leads/:id/assign',
    {
      onRequest: app.requireRole(...LEAD_ACTION_ROLES.assign),
      config: { etag: 'write' },
      schema: {
        operationId: 'assignLead',
        tags: ['leads'],
        summary: 'Assign a lead to an active user, or unassign it with null',
        params: IdParams,
        body: ref(LeadAssignmentSchema),
        response: { 200: ref(LeadSchema), ...problems(403, 404) },
      },
    },
    async (request, reply) =>
      changeLead(request, reply, request.params.id, (trx) =>
        assignLead(trx, request.actor, request.params.id, request.body.assigned_to),
      ),
  )

  app.delete(
    '/leads/:id',
    {
      onRequest: app.requireRole(...LEAD_ACTION_ROLES.delete),
      config: { etag: 'write' },
      schema: {
        operationId: 'deleteLead',
        tags: ['leads'],
        summary: 'Move a lead to the trash',
        description: 'POST /leads/{id}/restore brings it back.',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      await db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, LeadSchema, () => lockLead(trx, request.actor, request.params.id))
        await trashLead(trx, request.actor, request.params.id)
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/leads/bulk',
    {
      schema: {
        operationId: 'bulkLeads',
        tags: ['leads'],
        summary: 'Assign, change the status of, or trash up to 500 leads, each on its own',
        description:
          'Each lead is changed in its own transaction by the rules of its single route (PATCH /leads/{id}/assign, PATCH /leads/{id}/status, DELETE /leads/{id}): its result carries the status that route would answer (403 for a role that may not, 404 for a lead you may not see or in the trash, 409 for a forbidden transition, 412 when its if_match is stale). One failing lead does not undo the others. Send items (with if_match) or ids.',
        body: ref(LeadBulkSchema),
        response: { 200: ref(LeadBulkResultSchema) },
      },
    },
    async (request, reply) => ({
      results: await runBulk(db, request.actor, request.body, (ifMatch, lead) =>
        assertIfMatch(ifMatch, etagFor(reply, LeadSchema, lead)),
      ),
    }),
  )

  app.post(
    '/leads/:id/restore',
    {
      onRequest: app.requireRole(...LEAD_ACTION_ROLES.restore),
      schema: {
        operationId: 'restoreLead',
        tags: ['trash'],
        summary: 'Take a lead out of the trash',
        description:
          'A lead whose client is in the trash is a 409 client_trashed: restoring the client brings back the leads trashed with it. A lead not in the trash is a 404.',
        params: IdParams,
        response: { 200: ref(LeadSchema), ...problems(403, 404, 409) },
      },
    },
    async (request) => db.transaction().execute((trx) => restoreLead(trx, request.actor, request.params.id)),
  )

  app.get(
    '/leads/:id/history',
    {
      schema: {
        operationId: 'getLeadHistory',
        tags: ['leads'],
        summary: "A lead's audit rows, newest first",
        params: IdParams,
        querystring: HistoryQuery,
        response: { 200: ref(AuditLogPageSchema), ...problems(404) },
      },
    },
    async (request) => {
      await getLead(db, request.actor, request.params.id)
      return listAuditLogs(db, { table_name: 'leads', record_id: request.params.id, ...request.query })
    },
  )
}
