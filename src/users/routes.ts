import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { hashPassword } from '../auth/passwords.js'
import type { Database } from '../db/database.js'
import type { UserLocale } from '../db/types.js'
import { checkIfMatch, setETag } from '../http/etag.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { unassignLeadsOf } from '../leads/cascades.js'
import { unassignTasksOf } from '../tasks/commands.js'
import { UserCreateSchema, UserListQuery, UserPageSchema, UserSchema, UserUpdateSchema } from './schemas.js'
import { createUser, deleteUser, getUser, listUsers, lockUser, updateUser } from './service.js'

export const userRoutes: FastifyPluginAsyncTypebox<{ db: Database; defaultLocale: UserLocale }> = async (
  app,
  { db, defaultLocale },
) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRequest', app.requireRole('admin'))

  const hashIfGiven = async (password: string | undefined) =>
    password === undefined ? undefined : hashPassword(password)

  app.get(
    '/users',
    {
      schema: {
        operationId: 'listUsers',
        tags: ['users'],
        summary: 'List users',
        querystring: UserListQuery,
        response: { 200: ref(UserPageSchema), ...problems(403) },
      },
    },
    async (request) => listUsers(db, request.query),
  )

  app.post(
    '/users',
    {
      config: { idempotent: true, apiKeys: 'refused' },
      schema: {
        operationId: 'createUser',
        tags: ['users'],
        summary: 'Create a user',
        body: ref(UserCreateSchema),
        response: { 201: ref(UserSchema), ...problems(403, 409) },
      },
    },
    async (request, reply) => {
      const { password, ...fields } = request.body
      const passwordHash = await hashPassword(password)
      const user = await db
        .transaction()
        .execute((trx) => createUser(trx, request.actor, { locale: defaultLocale, ...fields, passwordHash }))
      return reply.code(201).header('location', `/users/${user.id}`).send(user)
    },
  )

  app.get(
    '/users/:id',
    {
      config: { etag: 'read' },
      schema: {
        operationId: 'getUser',
        tags: ['users'],
        summary: 'Read a user',
        params: IdParams,
        response: { 200: ref(UserSchema), ...problems(403, 404) },
      },
    },
    async (request) => getUser(db, request.params.id),
  )

  app.patch(
    '/users/:id',
    {
      config: { etag: 'write', apiKeys: ['password', 'role'] },
      schema: {
        operationId: 'updateUser',
        tags: ['users'],
        summary: 'Change a user',
        description: 'A new password, role or is_active revokes the tokens the user holds.',
        params: IdParams,
        body: ref(UserUpdateSchema),
        response: { 200: ref(UserSchema), ...problems(403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { password, ...fields } = request.body
      const passwordHash = await hashIfGiven(password)
      const id = request.params.id
      const user = await db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, UserSchema, () => lockUser(trx, id))
        return updateUser(trx, request.actor, id, { ...fields, passwordHash })
      })
      app.forgetUserState(user.id)
      setETag(reply, UserSchema, user)
      return user
    },
  )

  app.delete(
    '/users/:id',
    {
      config: { etag: 'write' },
      schema: {
        operationId: 'deleteUser',
        tags: ['users'],
        summary: 'Delete a user',
        description: 'Their leads and tasks become unassigned; the audit rows they wrote stay.',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(403, 404, 409) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      await db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, UserSchema, () => lockUser(trx, id))
        await deleteUser(trx, request.actor, id, async (trx, actor, userId) => {
          await unassignLeadsOf(trx, actor, userId)
          await unassignTasksOf(trx, actor, userId)
        })
      })
      app.forgetUserState(request.params.id)
      return reply.code(204).send(null)
    },
  )
}
