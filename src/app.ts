import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import jwt from '@fastify/jwt'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { Transaction } from 'kysely'
import type pg from 'pg'
import { authRoutes } from './account/routes.js'
import { authSchemas } from './account/schemas.js'
import { activityRoutes } from './activities/routes.js'
import { activitySchemas } from './activities/schemas.js'
import { agendaRoutes } from './agenda/routes.js'
import { agendaSchemas } from './agenda/schemas.js'
import { apiKeyRoutes } from './api-keys/routes.js'
import { apiKeySchemas } from './api-keys/schemas.js'
import { assignmentRoutes } from './assignment/routes.js'
import { assignmentSchemas } from './assignment/schemas.js'
import { auditRoutes } from './audit/routes.js'
import { auditSchemas } from './audit/schemas.js'
import type { Actor } from './auth/actor.js'
import { documentApiKeyLimits } from './auth/api-key-limits.js'
import { authenticationPlugin } from './auth/authenticate.js'
import { clientRoutes } from './clients/routes.js'
import { ClientListQuery, clientSchemas } from './clients/schemas.js'
import type { Config } from './config.js'
import { dashboardRoutes } from './dashboard/routes.js'
import type { Database } from './db/database.js'
import type { DB } from './db/types.js'
import { eventsWritten } from './events/outbox.js'
import { corsOptionsOf, FORM_PREFIX, publicFormRoutes } from './forms/public-routes.js'
import { webFormRoutes } from './forms/routes.js'
import { webFormSchemas } from './forms/schemas.js'
import { healthRoutes } from './health/routes.js'
import { answerConditionalRead, documentConditionalRequests } from './http/etag.js'
import { documentIdempotency, idempotencyPlugin } from './http/idempotency.js'
import { indexRoutes } from './http/index-route.js'
import { completeRouteDocumentation } from './http/openapi.js'
import { answerClientError, registerErrorHandling, sendProblem } from './http/problem.js'
import { httpSchemas } from './http/schemas.js'
import { createValidatorCompiler } from './http/validation.js'
import { clientLeads } from './leads/of-client.js'
import { leadRoutes } from './leads/routes.js'
import { LeadListQuery, leadSchemas } from './leads/schemas.js'
import { logDestination } from './logging.js'
import { metricsScraper } from './metrics/database.js'
import { observeRequest } from './metrics/registry.js'
import { metricsRoutes } from './metrics/routes.js'
import { setDefaultCurrency } from './money.js'
import { notificationRoutes } from './notifications/routes.js'
import { notificationSchemas } from './notifications/schemas.js'
import { pipelineRoutes } from './pipeline/routes.js'
import { pipelineSchemas } from './pipeline/schemas.js'
import { setDefaultTimeZone } from './pipeline/service.js'
import { searchRoutes } from './search/routes.js'
import { searchSchemas } from './search/schemas.js'
import { spreadsheetRoutes } from './spreadsheets/routes.js'
import { spreadsheetSchemas } from './spreadsheets/schemas.js'
import { moveTasksOfClient } from './tasks/commands.js'
import { taskRoutes } from './tasks/routes.js'
import { taskSchemas } from './tasks/schemas.js'
import { trashRoutes } from './trash/routes.js'
import { trashSchemas } from './trash/schemas.js'
import { userRoutes } from './users/routes.js'
import { userSchemas } from './users/schemas.js'
import { viewRoutes } from './views/routes.js'
import { viewSchemas } from './views/schemas.js'
import { webhookJobOptions } from './webhooks/jobs.js'
import { webhookRoutes } from './webhooks/routes.js'
import { webhookSchemas } from './webhooks/schemas.js'
import { whatsappSendRoutes, whatsappWebhookRoutes } from './whatsapp/routes.js'
import { whatsappSchemas } from './whatsapp/schemas.js'

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
}

/** Every named schema: shared by validation, serialisation and the OpenAPI document's components. */
const componentSchemas = [
  ...httpSchemas,
  ...userSchemas,
  ...authSchemas,
  ...apiKeySchemas,
  ...auditSchemas,
  ...clientSchemas,
  ...leadSchemas,
  ...taskSchemas,
  ...agendaSchemas,
  ...activitySchemas,
  ...assignmentSchemas,
  ...pipelineSchemas,
  ...webFormSchemas,
  ...notificationSchemas,
  ...webhookSchemas,
  ...spreadsheetSchemas,
  ...searchSchemas,
  ...viewSchemas,
  ...trashSchemas,
  ...whatsappSchemas,
]

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false }

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

// Query parameters that may carry a credential (access_token, token, key, hub.verify_token, api_key…).
const SECRET_PARAMETER = /(^|[._-])(token|key|secret|password)$/i

/** The URL as the log may keep it: the values of credential-like query parameters replaced. */
export function withSecretsRedacted(url: string): string {
  const question = url.indexOf('?')
  if (question === -1) return url
  const query = url
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const [rawName = '', ...value] = pair.split('=')
      let name = rawName
      try {
        name = decodeURIComponent(rawName.replaceAll('+', ' '))
      } catch {
        // A malformed name is kept as it came.
      }
      return value.length > 0 && SECRET_PARAMETER.test(name) ? `${rawName}=[redacted]` : pair
    })
  return `${url.slice(0, question)}?${query.join('&')}`
}

export interface AppDependencies {
  config: Config
  db: Database
  jwtSecret: string
  /** The pool behind db, whose connections GET /metrics reports. */
  pool?: pg.Pool
}

/** The server's options: logging with redaction, limits, request ids, and problem+json for router errors. */
function serverOptions(config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.logLevel,
      stream: logDestination(config.logFormat),
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
          '*.password',
          '*.current_password',
          '*.new_password',
          '*.password_hash',
          '*.access_token',
          '*.secret',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (request: FastifyRequest) => ({
          method: request.method,
          url: withSecretsRedacted(request.url),
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort,
        }),
      },
    },
    bodyLimit: config.bodyLimitBytes,
    // A number of hops: trust the socket's peer and the entries the hops before it appended.
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (_address: string, hop: number) => hop < (config.trustProxy as number)
        : config.trustProxy,
    requestIdHeader: false,
    genReqId: (request) => {
      const offered = request.headers['x-request-id']
      return typeof offered === 'string' && SANE_REQUEST_ID.test(offered) ? offered : randomUUID()
    },
    // While closing, requests in flight finish and the rest are answered as usual (as problem+json).
    return503OnClosing: false,
    // A malformed or over-long URL, refused by the router before any route runs: problem+json too.
    frameworkErrors: (error, _request, reply) =>
      sendProblem(reply, {
        status: error.statusCode === 414 ? 414 : 400,
        code: error.statusCode === 414 ? 'uri_too_long' : 'malformed_url',
        detail: error.statusCode === 414 ? 'A path segment is too long' : 'The URL is not validly encoded',
      }),
    routerOptions: { maxParamLength: 200 },
    clientErrorHandler: answerClientError,
  }
}

export async function buildApp({ config, db, jwtSecret, pool }: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(config)).withTypeProvider<TypeBoxTypeProvider>()
  setDefaultTimeZone(config.defaultTimeZone)
  setDefaultCurrency(config.defaultCurrency)

  for (const schema of componentSchemas) app.addSchema(schema)
  app.setValidatorCompiler(createValidatorCompiler(componentSchemas))
  registerErrorHandling(app)
  // A route that declares no query parameters takes none: an unknown one is a 400, as on every other route.
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { operationId?: string; querystring?: unknown } | undefined
    if (schema?.operationId && !schema.querystring) schema.querystring = NO_QUERY
  })
  app.addHook('onRoute', documentConditionalRequests)
  app.addHook('onRoute', documentIdempotency)
  app.addHook('onRoute', documentApiKeyLimits)
  app.addHook('onRoute', completeRouteDocumentation)
  app.addHook('onSend', answerConditionalRead)

  // JSON only (and forms on /auth/login); anything else is a 415. An empty JSON body counts as none.
  app.removeContentTypeParser('text/plain')
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string
    if (text.trim() === '') return done(null, undefined)
    parseJson(request, text, done)
  })

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  // Counted under the route's pattern (/leads/:id): an id in a label would make a series per record.
  app.addHook('onResponse', async (request, reply) => {
    observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000)
  })
  // A write that succeeded has committed its events: this process's workers look at once.
  app.addHook('onResponse', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD' && reply.statusCode < 400) eventsWritten.emit('written')
  })

  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        'connect-src': ["'self'"],
        'img-src': ["'self'", 'data:'],
        'script-src': ["'self'"],
        'style-src': ["'self'", "'unsafe-inline'"],
      },
    },
  })
  // One registration answers CORS for the API (CORS_ORIGINS) and for each web form (its own origins).
  app.decorateRequest('webForm', undefined)
  await app.register(cors, { delegator: corsOptionsOf(db, config.corsOrigins) })

  await app.register(jwt, {
    secret: jwtSecret,
    sign: { algorithm: 'HS256' },
    // A token without an end, a subject or a version would outlive every revocation.
    verify: { algorithms: ['HS256'], requiredClaims: ['sub', 'exp', 'iat', 'ver'] },
  })
  await app.register(authenticationPlugin, { db, cacheMs: config.authCacheMs })
  await app.register(idempotencyPlugin, { db, secret: jwtSecret })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mini CRM API',
        version: packageJson.version,
        description: "A small sales team's clients and leads.",
      },
      // Relative: Swagger UI calls the host it was opened on (127.0.0.1, a LAN name, behind a proxy), which
      // the CSP's connect-src allows; an absolute PUBLIC_URL breaks "Try it out" from any other host.
      servers: [{ url: '/', description: 'The host this document was read from' }],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'An access token from POST /auth/login (a JWT, valid for an hour)',
          },
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'crm_…',
            description:
              'An API key from POST /auth/api-keys (crm_ + 43 characters), sent the same way: Authorization: Bearer crm_…. It acts with its owner’s role; a read key may only GET.',
          },
          passwordLogin: { type: 'oauth2', flows: { password: { tokenUrl: '/auth/login', scopes: {} } } },
        },
      },
      security: [{ bearerAuth: [] }, { apiKey: [] }, { passwordLogin: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => String(json.$id ?? `def-${index}`) },
  })
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null, persistAuthorization: false } })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  if (config.metrics.token !== undefined) {
    await app.register(metricsRoutes, { scraper: metricsScraper(db, pool), token: config.metrics.token })
  }
  await app.register(indexRoutes, { version: packageJson.version })
  await app.register(healthRoutes, { db })
  await app.register(authRoutes, {
    db,
    limits: config.login,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
  })
  await app.register(apiKeyRoutes, { db })
  await app.register(userRoutes, { db, defaultLocale: config.defaultLocale })
  await app.register(notificationRoutes, { db })
  await app.register(auditRoutes, { db })
  // A merge moves the duplicate's own tasks along with its leads.
  const leadsAndTasks = {
    ...clientLeads,
    dependents: {
      ...clientLeads.dependents,
      moveAll: async (trx: Transaction<DB>, actor: Actor, fromId: number, toId: number) => {
        const moved = await clientLeads.dependents.moveAll(trx, actor, fromId, toId)
        await moveTasksOfClient(trx, actor, fromId, toId)
        return moved
      },
    },
  }
  await app.register(clientRoutes, {
    db,
    rules: { defaultPhoneRegion: config.defaultPhoneRegion },
    leads: leadsAndTasks,
  })
  await app.register(leadRoutes, { db })
  await app.register(activityRoutes, { db })
  await app.register(taskRoutes, { db, defaultTimeZone: config.defaultTimeZone })
  await app.register(agendaRoutes, { db, defaultTimeZone: config.defaultTimeZone })
  await app.register(assignmentRoutes, { db })
  await app.register(pipelineRoutes, { db })
  await app.register(webFormRoutes, { db })
  await app.register(publicFormRoutes, {
    prefix: FORM_PREFIX,
    db,
    rules: { defaultPhoneRegion: config.defaultPhoneRegion },
    limits: config.forms,
  })
  await app.register(webhookRoutes, {
    db,
    jobs: webhookJobOptions(config),
  })
  await app.register(dashboardRoutes)
  await app.register(spreadsheetRoutes, {
    db,
    rules: { defaultPhoneRegion: config.defaultPhoneRegion },
    uploads: { idleTimeoutMs: config.uploadIdleTimeoutMs, maxInflatedBytes: config.uploadMaxInflatedBytes },
  })
  await app.register(searchRoutes, { db, defaultPhoneRegion: config.defaultPhoneRegion })
  await app.register(viewRoutes, { db, listQueries: { leads: LeadListQuery, clients: ClientListQuery } })
  await app.register(trashRoutes, { db })
  const whatsapp = { db, whatsapp: config.whatsapp, rules: { defaultPhoneRegion: config.defaultPhoneRegion } }
  await app.register(whatsappWebhookRoutes, whatsapp)
  await app.register(whatsappSendRoutes, whatsapp)

  return app
}
