import formbody from '@fastify/formbody'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { hashPassword, prepareUnknownUserHash } from '../auth/passwords.js'
import type { ThrottleLimits } from '../auth/throttle.js'
import type { Database } from '../db/database.js'
import { problems, ref } from '../http/schemas.js'
import { ProfileUpdateSchema, UserSchema } from '../users/schemas.js'
import { getUser, updateUser } from '../users/service.js'
import { LoginSchema, PasswordChangeSchema, TokenSchema } from './schemas.js'
import { assertCurrentPassword, login } from './service.js'

export interface AuthRouteOptions {
  db: Database
  limits: ThrottleLimits
  accessTokenTtlSeconds: number
}

export const authRoutes: FastifyPluginAsyncTypebox<AuthRouteOptions> = async (app, options) => {
  const { db, limits, accessTokenTtlSeconds } = options
  await prepareUnknownUserHash()
  // Form bodies only here, for the OAuth2 password flow; every other route takes JSON alone.
  await app.register(formbody)

  app.post(
    '/auth/login',
    {
      schema: {
        operationId: 'login',
        tags: ['auth'],
        summary: 'Exchange a username and password for a bearer token',
        description:
          'Takes application/x-www-form-urlencoded (OAuth2 password flow) or JSON. Repeated failures are throttled per username and per client address.',
        security: [],
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: ref(LoginSchema),
        response: { 200: ref(TokenSchema), ...problems(401, 429) },
      },
    },
    async (request, reply) => {
      const result = await login(db, request.body, request.ip, limits)
      const accessToken = app.jwt.sign(
        { sub: String(result.userId), role: result.role, ver: result.tokenVersion },
        { expiresIn: accessTokenTtlSeconds },
      )
      // Tokens are credentials: no cache may keep them.
      reply.header('cache-control', 'no-store')
      return { access_token: accessToken, token_type: 'bearer' as const, expires_in: accessTokenTtlSeconds }
    },
  )

  app.get(
    '/auth/me',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'getCurrentUser',
        tags: ['auth'],
        summary: 'The user the token belongs to',
        response: { 200: ref(UserSchema) },
      },
    },
    async (request) => getUser(db, request.actor.userId),
  )

  app.patch(
    '/auth/me',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'updateCurrentUser',
        tags: ['auth'],
        summary: 'Change your own name, language or time zone',
        description:
          'locale is the language of your mails; time_zone (IANA, null for DEFAULT_TIME_ZONE) is where your "today" starts for tasks, the agenda and the morning digest. Audited as a change of your user.',
        body: ref(ProfileUpdateSchema),
        response: { 200: ref(UserSchema) },
      },
    },
    async (request) =>
      db.transaction().execute((trx) => updateUser(trx, request.actor, request.actor.userId, request.body)),
  )

  app.post(
    '/auth/me/password',
    {
      onRequest: app.authenticate,
      config: { apiKeys: 'refused' },
      schema: {
        operationId: 'changeOwnPassword',
        tags: ['auth'],
        summary: 'Change your own password',
        description: 'Every token you hold, this one included, stops working: log in again.',
        body: ref(PasswordChangeSchema),
        response: { 204: Type.Null(), ...problems(429) },
      },
    },
    async (request, reply) => {
      const { actor } = request
      await assertCurrentPassword(db, actor, request.body.current_password, request.ip, limits)
      const passwordHash = await hashPassword(request.body.new_password)
      await db.transaction().execute((trx) => updateUser(trx, actor, actor.userId, { passwordHash }))
      app.forgetUserState(actor.userId)
      return reply.code(204).send(null)
    },
  )
}
