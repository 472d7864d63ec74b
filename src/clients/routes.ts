import { type FastifyPluginAsyncTypebox, type TSchema, Type } from '@fastify/type-provider-typebox'
import { listAuditLogs, withVisibleLeadIds } from '../audit/read.js'
import { AuditLogPageSchema, HistoryQuery } from '../audit/schemas.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { visibleLeadIds } from '../auth/scope.js'
import type { Database } from '../db/database.js'
import { checkIfMatch, setETag } from '../http/etag.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { applyView } from '../views/apply.js'
import {
  type ClientDependents,
  createClient,
  lockClient,
  restoreClient,
  trashClient,
  updateClient,
} from './commands.js'
import { mergeClients } from './merge.js'
import { type Client, type ClientRules, getClient, getClientByPhone, listClients, searchClients } from './queries.js'
import {
  ClientCreateSchema,
  ClientDeleteQuery,
  ClientListQuery,
  ClientMergeOutcomeSchema,
  ClientMergeSchema,
  ClientPageSchema,
  ClientSchema,
  ClientSearchQuery,
  ClientUpdateSchema,
  PhoneParams,
} from './schemas.js'

/**
 * What the client routes need of a client's leads. Leads sit above clients (a lead names its client),
 * so leads/ provides this and app.ts passes it in: clients/ imports nothing of leads/.
 */
export interface ClientLeads {
  /** GET /clients/{id}'s response schema: the client with its newest leads. */
  detailSchema: TSchema
  /** The newest leads of the client that the actor may see, and how many they may see. */
  newest(db: Database, actor: AuthenticatedActor, clientId: number): Promise<{ leads: unknown[]; leads_total: number }>
  dependents: ClientDependents
}

export const clientRoutes: FastifyPluginAsyncTypebox<{ db: Database; rules: ClientRules; leads: ClientLeads }> = async (
  app,
  options,
) => {
  const { db, rules } = options
  const { detailSchema: ClientDetailSchema, dependents } = options.leads
  /** The client as GET /clients/{id} shows it to the actor: with the newest leads they may see. */
  const clientDetail = async (db: Database, actor: AuthenticatedActor, client: Client) => ({
    ...client,
    ...(await options.leads.newest(db, actor, client.id)),
  })
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/clients',
    {
      preValidation: applyView(db, 'clients'),
      schema: {
        operationId: 'listClients',
        tags: ['clients'],
        summary: 'List clients',
        querystring: ClientListQuery,
        response: { 200: ref(ClientPageSchema) },
      },
    },
    async (request) => listClients(db, request.actor, request.query),
  )

  app.post(
    '/clients',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createClient',
        tags: ['clients'],
        summary: 'Register a client',
        description:
          'One client per phone number: a number already registered, however written, is a 409 phone_taken with existing_id.',
        body: ref(ClientCreateSchema),
        response: { 201: ref(ClientSchema), ...problems(409) },
      },
    },
    async (request, reply) => {
      const client = await db.transaction().execute((trx) => createClient(trx, request.actor, request.body, rules))
      return reply.code(201).header('location', `/clients/${client.id}`).send(client)
    },
  )

  app.get(
    '/clients/search',
    {
      schema: {
        operationId: 'searchClients',
        tags: ['clients'],
        summary: 'Find clients by name, company, email or phone, best match first',
        querystring: ClientSearchQuery,
        response: { 200: ref(ClientPageSchema) },
      },
    },
    async (request) => searchClients(db, request.query),
  )

  app.get(
    '/clients/by-phone/:phone',
    {
      schema: {
        operationId: 'getClientByPhone',
        tags: ['clients'],
        summary: 'Find the client with a phone number, written in any form',
        params: PhoneParams,
        response: { 200: ref(ClientSchema), ...problems(404) },
      },
    },
    async (request) => getClientByPhone(db, request.params.phone, rules),
  )

  app.get(
    '/clients/:id',
    {
      config: { etag: 'read' },
      schema: {
        operationId: 'getClient',
        tags: ['clients'],
        summary: 'Read a client with the most recent leads you may see',
        params: IdParams,
        response: { 200: ref(ClientDetailSchema), ...problems(404) },
      },
    },
    async (request) => clientDetail(db, request.actor, await getClient(db, request.params.id)),
  )

  app.patch(
    '/clients/:id',
    {
      config: { etag: 'write' },
      schema: {
        operationId: 'updateClient',
        tags: ['clients'],
        summary: 'Change a client',
        params: IdParams,
        body: ref(ClientUpdateSchema),
        response: { 200: ref(ClientSchema), ...problems(404, 409) },
      },
    },
    async (request, reply) => {
      const { actor } = request
      const id = request.params.id
      return db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, ClientDetailSchema, async () =>
          clientDetail(trx, actor, await lockClient(trx, id)),
        )
        const client = await updateClient(trx, actor, id, request.body, rules)
        setETag(reply, ClientDetailSchema, await clientDetail(trx, actor, client))
        return client
      })
    },
  )

  app.delete(
    '/clients/:id',
    {
      onRequest: app.requireRole('admin', 'management'),
      config: { etag: 'write' },
      schema: {
        operationId: 'deleteClient',
        tags: ['clients'],
        summary: 'Move a client to the trash',
        description:
          'A client with leads is a 409 client_has_leads unless cascade=true, which moves them to the trash with it. POST /clients/{id}/restore brings it back.',
        params: IdParams,
        querystring: ClientDeleteQuery,
        response: { 204: Type.Null(), ...problems(403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { actor } = request
      const id = request.params.id
      await db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, ClientDetailSchema, async () =>
          clientDetail(trx, actor, await lockClient(trx, id)),
        )
        await trashClient(trx, actor, id, { cascade: request.query.cascade, dependents })
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/clients/:id/restore',
    {
      onRequest: app.requireRole('admin', 'management'),
      schema: {
        operationId: 'restoreClient',
        tags: ['trash'],
        summary: 'Take a client out of the trash, with the leads trashed with it',
        description:
          'A live client that has the same phone by now is a 409 phone_taken with existing_id. A client not in the trash is a 404.',
        params: IdParams,
        response: { 200: ref(ClientSchema), ...problems(403, 404, 409) },
      },
    },
    async (request) =>
      db.transaction().execute((trx) => restoreClient(trx, request.actor, request.params.id, dependents)),
  )

  app.post(
    '/clients/:id/merge',
    {
      onRequest: app.requireRole('admin', 'management'),
      schema: {
        operationId: 'mergeClients',
        tags: ['clients'],
        summary: 'Merge a duplicate into this client',
        description:
          'Moves every lead (and its activities) of from_id here, fills this client’s empty company_name, email and address from it, and moves from_id to the trash, in one transaction with an audit row (merge) for each lead and each client. dry_run answers the same and writes nothing. This client missing or trashed is a 404; from_id the same id, missing or trashed is a 400.',
        params: IdParams,
        body: ref(ClientMergeSchema),
        response: { 200: ref(ClientMergeOutcomeSchema), ...problems(403, 404) },
      },
    },
    async (request) =>
      db.transaction().execute((trx) => mergeClients(trx, request.actor, request.params.id, request.body, dependents)),
  )

  app.get(
    '/clients/:id/history',
    {
      schema: {
        operationId: 'getClientHistory',
        tags: ['clients'],
        summary: "A client's audit rows, newest first",
        params: IdParams,
        querystring: HistoryQuery,
        response: { 200: ref(AuditLogPageSchema), ...problems(404) },
      },
    },
    async (request) => {
      await getClient(db, request.params.id)
      const page = await listAuditLogs(db, { table_name: 'clients', record_id: request.params.id, ...request.query })
      return withVisibleLeadIds(page, (ids) => visibleLeadIds(db, request.actor, ids))
    },
  )
}
