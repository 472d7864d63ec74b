import type { FastifyCorsOptions } from '@fastify/cors'
import formbody from '@fastify/formbody'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { viaActor } from '../auth/actor.js'
import { normalize } from '../clients/commands.js'
import type { ClientRules } from '../clients/queries.js'
import type { Database } from '../db/database.js'
import { ForbiddenError, NotFoundError } from '../errors/domain.js'
import { problems, ref } from '../http/schemas.js'
import { receiveInbound } from '../inbound/service.js'
import { FormKeyParams, FormReceiptSchema, FormSubmissionSchema } from './schemas.js'
import type { WebForm } from './service.js'
import { webFormByKey } from './service.js'
import { countAcceptedPost, countPostFromAddress, type FormLimits } from './throttle.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The form named by the key in /f/{key}, once looked up. */
    webForm: WebForm | undefined
  }
}

export const FORM_PREFIX = '/f'
const FORM_BODY_LIMIT = 64 * 1024
// Optional fields an HTML form sends empty when left blank: absent, not invalid.
const OPTIONAL_FIELDS = ['email', 'company', 'message', 'website'] as const

/** The key of a public form's URL (/f/{key}), or undefined for any other URL. */
function formKeyOf(url: string): string | undefined {
  const path = url.split('?')[0] ?? ''
  return path.startsWith(`${FORM_PREFIX}/`) ? path.slice(FORM_PREFIX.length + 1) : undefined
}

/**
 * The CORS options of each request, for the one registration of @fastify/cors: a public form's
 * URL answers the form's own allowed origins (and keeps the form for the route); any other URL
 * the API's CORS_ORIGINS, or no CORS at all when there are none.
 */
export function corsOptionsOf(db: Database, apiOrigins: string[]) {
  return async (request: FastifyRequest): Promise<FastifyCorsOptions> => {
    const key = formKeyOf(request.url)
    if (key === undefined) {
      return {
        origin: apiOrigins.length > 0 ? apiOrigins : false,
        // Headers a browser's script may read: what conditional requests, retries and creations answer.
        exposedHeaders: ['ETag', 'Location', 'Idempotent-Replayed', 'Retry-After', 'X-Request-Id'],
      }
    }
    request.webForm = key ? await webFormByKey(db, key) : undefined
    const origins = request.webForm?.allowed_origins ?? []
    return {
      origin: origins.length > 0 ? origins : false,
      methods: ['POST'],
      allowedHeaders: ['Content-Type'],
      maxAge: 600,
    }
  }
}

/** What a post gets once taken (or dropped as spam, which must look the same). */
function answerReceived(request: FastifyRequest, reply: FastifyReply, form: WebForm) {
  const fromBrowserForm = String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')
  if (form.redirect_url && fromBrowserForm) return reply.code(303).header('location', form.redirect_url).send()
  return reply.code(201).send({ received: true })
}

/** The public POST /f/{key}: no token; its CORS is answered by `corsOptionsOf`. */
export const publicFormRoutes: FastifyPluginAsyncTypebox<{
  db: Database
  rules: ClientRules
  limits: FormLimits
}> = async (app, { db, rules, limits }) => {
  await app.register(formbody, { bodyLimit: FORM_BODY_LIMIT })

  app.post(
    '/:key',
    {
      bodyLimit: FORM_BODY_LIMIT,
      preValidation: async (request, reply) => {
        const form = request.webForm
        if (!form) throw new NotFoundError('Form')
        const origin = request.headers.origin
        if (origin !== undefined && !form.allowed_origins.includes(origin)) {
          throw new ForbiddenError(`This form does not take posts from ${origin}`, 'origin_not_allowed')
        }
        await countPostFromAddress(db, request.ip, limits)
        const body = request.body as Record<string, unknown> | undefined
        if (typeof body !== 'object' || body === null) return
        for (const field of OPTIONAL_FIELDS) if (body[field] === '') delete body[field]
        // A filled honeypot is a robot: it is told all went well, and nothing is written.
        if (typeof body.website === 'string' && body.website.trim() !== '') {
          request.log.info({ form_id: form.id }, 'web form honeypot filled: submission dropped')
          return answerReceived(request, reply, form)
        }
      },
      schema: {
        operationId: 'submitWebForm',
        tags: ['forms'],
        summary: 'Post a web form (no token): files the contact as a client, a lead and a form activity',
        description:
          'application/x-www-form-urlencoded (an HTML form) or JSON. Reuses the client with that phone and its open lead; else creates a lead (channel web) assigned by the form’s assign_to or the assignment rules. A browser form post is answered 303 to the form’s redirect_url when it has one. A post whose Origin is not among the form’s allowed_origins is a 403 origin_not_allowed. Throttled per client address (every post) and per form (the posts it takes), 429 with Retry-After.',
        security: [],
        params: FormKeyParams,
        body: ref(FormSubmissionSchema),
        response: {
          201: ref(FormReceiptSchema),
          303: Type.Null({ description: 'See Other: the form’s redirect_url, for a browser form post' }),
          ...problems(403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const form = request.webForm as WebForm
      const { name, phone, email, company, message } = request.body
      const contact = normalize({ contact_name: name, phone, email, company_name: company }, rules)
      await countAcceptedPost(db, form.id, limits)
      await db.transaction().execute((trx) =>
        receiveInbound(
          trx,
          viaActor({ type: 'form', id: form.id, name: form.name }, request.id),
          {
            phones: [contact.phone as string],
            name: contact.contact_name as string,
            email: contact.email,
            company: contact.company_name,
          },
          {
            channel: 'web',
            preferredAssignee: form.assign_to,
            activity: { type: 'form', body: message?.trim() || null, meta: { form_id: form.id, form_name: form.name } },
          },
          rules,
        ),
      )
      return answerReceived(request, reply, form)
    },
  )
}
