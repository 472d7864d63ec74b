import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import {
  WebFormCreateSchema,
  WebFormListQuery,
  WebFormPageSchema,
  WebFormSchema,
  WebFormUpdateSchema,
} from './schemas.js'
import { createWebForm, deleteWebForm, getWebForm, listWebForms, rotateWebFormKey, updateWebForm } from './service.js'

const ADMIN_ONLY = 'Admin only.'
const adminErrors = problems(403)

/** The forms' settings (admin); the pages post to the public route of ./public.ts. */
export const webFormRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRequest', app.requireRole('admin'))

  app.post(
    '/forms',
    {
      config: { idempotent: true, apiKeys: 'refused' },
      schema: {
        operationId: 'createWebForm',
        tags: ['forms'],
        summary: 'Create a web form; its public key is what the page posts to (/f/{key})',
        description: `${ADMIN_ONLY} allowed_origins are the origins whose pages may post (CORS); redirect_url is where a browser post is sent afterwards (303); assign_to gives its new leads to that user instead of the assignment rules.`,
        body: ref(WebFormCreateSchema),
        response: { 201: ref(WebFormSchema), ...adminErrors },
      },
    },
    async (request, reply) => {
      const form = await db.transaction().execute((trx) => createWebForm(trx, request.actor, request.body))
      return reply.code(201).header('location', `/forms/${form.id}`).send(form)
    },
  )

  app.get(
    '/forms',
    {
      schema: {
        operationId: 'listWebForms',
        tags: ['forms'],
        summary: 'List web forms, newest first',
        description: ADMIN_ONLY,
        querystring: WebFormListQuery,
        response: { 200: ref(WebFormPageSchema), ...adminErrors },
      },
    },
    async (request) => listWebForms(db, request.query),
  )

  app.get(
    '/forms/:id',
    {
      schema: {
        operationId: 'getWebForm',
        tags: ['forms'],
        summary: 'Read a web form',
        description: ADMIN_ONLY,
        params: IdParams,
        response: { 200: ref(WebFormSchema), ...problems(403, 404) },
      },
    },
    async (request) => getWebForm(db, request.params.id),
  )

  app.patch(
    '/forms/:id',
    {
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'updateWebForm',
        tags: ['forms'],
        summary: 'Change a web form’s name, origins, redirect or assignee',
        description: ADMIN_ONLY,
        params: IdParams,
        body: ref(WebFormUpdateSchema),
        response: { 200: ref(WebFormSchema), ...problems(403, 404) },
      },
    },
    async (request) =>
      db.transaction().execute((trx) => updateWebForm(trx, request.actor, request.params.id, request.body)),
  )

  app.post(
    '/forms/:id/rotate-key',
    {
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'rotateWebFormKey',
        tags: ['forms'],
        summary: 'Give a web form a new key; posts to the old one get 404 from now on',
        description: ADMIN_ONLY,
        params: IdParams,
        response: { 200: ref(WebFormSchema), ...problems(403, 404) },
      },
    },
    async (request) => db.transaction().execute((trx) => rotateWebFormKey(trx, request.actor, request.params.id)),
  )

  app.delete(
    '/forms/:id',
    {
      schema: {
        operationId: 'deleteWebForm',
        tags: ['forms'],
        summary: 'Delete a web form (its leads stay)',
        description: ADMIN_ONLY,
        params: IdParams,
        response: { 204: Type.Null(), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      await db.transaction().execute((trx) => deleteWebForm(trx, request.actor, request.params.id))
      return reply.code(204).send(null)
    },
  )
}
