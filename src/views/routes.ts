import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { TObject, TSchema } from '@sinclair/typebox'
import type { ValidateFunction } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'
import type { Database } from '../db/database.js'
import type { ViewResource } from '../db/types.js'
import { type FieldError, ValidationError } from '../errors/domain.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { fieldErrors } from '../http/validation.js'
import {
  savedQuerySchemas,
  ViewCreateSchema,
  ViewListQuery,
  ViewPageSchema,
  ViewSchema,
  ViewUpdateSchema,
} from './schemas.js'
import { type CheckSavedQuery, createView, deleteView, getView, listViews, updateView } from './service.js'

/**
 * `listQueries`: the query schema of each list a view may hold filters of (GET /leads, GET /clients),
 * passed in by app.ts: the lists use views, so views/ imports nothing of theirs.
 */
export const viewRoutes: FastifyPluginAsyncTypebox<{
  db: Database
  listQueries: Record<ViewResource, TObject>
}> = async (app, { db, listQueries }) => {
  app.addHook('onRequest', app.authenticate)

  // The lists' own query schemas, compiled as the lists compile them (query strings: single values
  // of repeatable parameters become arrays), so that a view holds only what its list accepts.
  const compile = (schema: TSchema, resource: string) =>
    (app.validatorCompiler as FastifySchemaCompiler<TSchema>)({
      schema,
      httpPart: 'querystring',
      method: 'GET',
      url: `/${resource}`,
    }) as ValidateFunction
  const validators = Object.fromEntries(
    Object.entries(listQueries).map(([resource, listQuery]) => {
      const schemas = savedQuerySchemas(listQuery)
      return [resource, { filters: compile(schemas.filters, resource), sort: compile(schemas.sort, resource) }]
    }),
  ) as Record<ViewResource, { filters: ValidateFunction; sort: ValidateFunction }>

  const check: CheckSavedQuery = (resource, query) => {
    // Validation reads values into their types in place: on a copy.
    const filters = structuredClone(query.filters ?? {}) as Record<string, unknown>
    const { filters: validFilters, sort: validSort } = validators[resource]
    const errors: FieldError[] = []
    if (!validFilters(filters)) {
      const named = fieldErrors(validFilters.errors ?? [], 'querystring')
      errors.push(...named.map((error) => ({ ...error, field: `filters.${error.field}` })))
    }
    if (query.sort != null && !validSort(query.sort)) {
      errors.push({ field: 'sort', message: `is not a sort of ${resource}` })
    }
    if (errors.length > 0) throw new ValidationError(errors)
    return { filters, sort: query.sort ?? null }
  }

  app.post(
    '/views',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createView',
        tags: ['views'],
        summary: 'Save the filters and sort of GET /leads or GET /clients under a name',
        description:
          'filters and sort are checked against the list’s own query parameters (a 400 names filters.<parameter> or sort). A view is yours alone unless shared: true, which shows it to everyone.',
        body: ref(ViewCreateSchema),
        response: { 201: ref(ViewSchema) },
      },
    },
    async (request, reply) => {
      const view = await db.transaction().execute((trx) => createView(trx, request.actor, request.body, check))
      return reply.code(201).header('location', `/views/${view.id}`).send(view)
    },
  )

  app.get(
    '/views',
    {
      schema: {
        operationId: 'listViews',
        tags: ['views'],
        summary: 'Your views and the shared ones, oldest first',
        querystring: ViewListQuery,
        response: { 200: ref(ViewPageSchema) },
      },
    },
    async (request) => listViews(db, request.actor, request.query),
  )

  app.get(
    '/views/:id',
    {
      schema: {
        operationId: 'getView',
        tags: ['views'],
        summary: 'Read a view: yours, or a shared one',
        params: IdParams,
        response: { 200: ref(ViewSchema), ...problems(404) },
      },
    },
    async (request) => getView(db, request.actor, request.params.id),
  )

  app.patch(
    '/views/:id',
    {
      schema: {
        operationId: 'updateView',
        tags: ['views'],
        summary: 'Change a view (its owner; a shared one also an admin)',
        params: IdParams,
        body: ref(ViewUpdateSchema),
        response: { 200: ref(ViewSchema), ...problems(403, 404) },
      },
    },
    async (request) =>
      db.transaction().execute((trx) => updateView(trx, request.actor, request.params.id, request.body, check)),
  )

  app.delete(
    '/views/:id',
    {
      schema: {
        operationId: 'deleteView',
        tags: ['views'],
        summary: 'Delete a view (its owner; a shared one also an admin)',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      await db.transaction().execute((trx) => deleteView(trx, request.actor, request.params.id))
      return reply.code(204).send(null)
    },
  )
}
