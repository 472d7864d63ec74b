import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { listAuditLogs } from '../audit/read.js'
import { AuditLogPageSchema, HistoryQuery } from '../audit/schemas.js'
import type { Database } from '../db/database.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { ClientDetailSchema } from '../leads/schemas.js'
import { countLeadsOfClient, deleteLeadsOfClient, leadsOfClient } from '../leads/service.js'
import { applyView } from '../views/apply.js'
import {
  ClientCreateSchema,
  ClientDeleteQuery,
  ClientListQuery,
  ClientPageSchema,
  ClientSchema,
  ClientSearchQuery,
  ClientUpdateSchema,
  PhoneParams,
} from './schemas.js'
import {
  type ClientRules,
  createClient,
  deleteClient,
  getClient,
  getClientByPhone,
  listClients,
  searchClients,
  updateClient,
} from './service.js'

export const clientRoutes: FastifyPluginAsyncTypebox<{ db: Database; rules: ClientRules }> = async (app, options) => {
  const { db, rules } = options
  const dependents = { count: countLeadsOfClient, deleteAll: deleteLeadsOfClient }
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
      schema: {
        operationId: 'getClient',
        tags: ['clients'],
        summary: 'Read a client with the 20 most recent leads you may see',
        params: IdParams,
        response: { 200: ref(ClientDetailSchema), ...problems(404) },
      },
    },
    async (request) => {
      const client = await getClient(db, request.params.id)
      return { ...client, ...(await leadsOfClient(db, request.actor, client.id)) }
    },
  )

  app.patch(
    '/clients/:id',
    {
      schema: {
        operationId: 'updateClient',
        tags: ['clients'],
        summary: 'Change a client',
        params: IdParams,
        body: ref(ClientUpdateSchema),
        response: { 200: ref(ClientSchema), ...problems(404, 409) },
      },
    },
    async (request) =>
      db.transaction().execute((trx) => updateClient(trx, request.actor, request.params.id, request.body, rules)),
  )

  app.delete(
    '/clients/:id',
    {
      onRequest: app.requireRole('admin', 'management'),
      schema: {
        operationId: 'deleteClient',
        tags: ['clients'],
        summary: 'Delete a client',
        description: 'A client with leads is a 409 client_has_leads unless cascade=true, which deletes them too.',
        params: IdParams,
        querystring: ClientDeleteQuery,
        response: { 204: Type.Null(), ...problems(403, 404, 409) },
      },
    },
    async (request, reply) => {
      await db
        .transaction()
        .execute((trx) =>
          deleteClient(trx, request.actor, request.params.id, { cascade: request.query.cascade, dependents }),
        )
      return reply.code(204).send(null)
    },
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
      return listAuditLogs(db, { table_name: 'clients', record_id: request.params.id, ...request.query })
    },
  )
}
