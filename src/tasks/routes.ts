import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { checkIfMatch, setETag } from '../http/etag.js'
import { IdParams, problems, ref } from '../http/schemas.js'
import { completeTask, createTask, deleteTask, lockTask, reopenTask, updateTask } from './commands.js'
import { callerTimeZone, getTask, listTasks } from './queries.js'
import { TaskCreateSchema, TaskListQuery, TaskPageSchema, TaskSchema, TaskUpdateSchema } from './schemas.js'

const SCOPE = 'Sales users: the tasks assigned to them and those on the leads assigned to them (others are 404).'

export const taskRoutes: FastifyPluginAsyncTypebox<{ db: Database; defaultTimeZone: string }> = async (
  app,
  { db, defaultTimeZone },
) => {
  app.addHook('onRequest', app.authenticate)

  const timeZoneOf = (userId: number) => callerTimeZone(db, userId, defaultTimeZone)

  app.get(
    '/tasks',
    {
      schema: {
        operationId: 'listTasks',
        tags: ['tasks'],
        summary: 'List tasks, by due_at unless sorted otherwise',
        description: `${SCOPE} status=due_today counts the day in the caller’s time_zone.`,
        querystring: TaskListQuery,
        response: { 200: ref(TaskPageSchema) },
      },
    },
    async (request) => listTasks(db, request.actor, request.query, await timeZoneOf(request.actor.userId)),
  )

  app.post(
    '/tasks',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createTask',
        tags: ['tasks'],
        summary: 'Create a task, on a lead, a client or nothing',
        description:
          'assigned_to omitted: the caller. Sales users assign tasks to themselves only (else 403) and put them on their own leads.',
        body: ref(TaskCreateSchema),
        response: { 201: ref(TaskSchema), ...problems(403) },
      },
    },
    async (request, reply) => {
      const task = await db.transaction().execute((trx) => createTask(trx, request.actor, request.body))
      return reply.code(201).header('location', `/tasks/${task.id}`).send(task)
    },
  )

  app.get(
    '/tasks/:id',
    {
      config: { etag: 'read' },
      schema: {
        operationId: 'getTask',
        tags: ['tasks'],
        summary: 'Read a task',
        description: SCOPE,
        params: IdParams,
        response: { 200: ref(TaskSchema), ...problems(404) },
      },
    },
    async (request) => getTask(db, request.actor, request.params.id),
  )

  app.patch(
    '/tasks/:id',
    {
      config: { etag: 'write' },
      schema: {
        operationId: 'updateTask',
        tags: ['tasks'],
        summary: 'Change a task',
        description: `${SCOPE} Sales users may not assign it to anyone else (403).`,
        params: IdParams,
        body: ref(TaskUpdateSchema),
        response: { 200: ref(TaskSchema), ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const task = await db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, TaskSchema, () => lockTask(trx, request.actor, id))
        return updateTask(trx, request.actor, id, request.body)
      })
      setETag(reply, TaskSchema, task)
      return task
    },
  )

  app.delete(
    '/tasks/:id',
    {
      config: { etag: 'write' },
      schema: {
        operationId: 'deleteTask',
        tags: ['tasks'],
        summary: 'Delete a task for good',
        description: `${SCOPE} The audit log keeps what it was.`,
        params: IdParams,
        response: { 204: Type.Null(), ...problems(404) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      await db.transaction().execute(async (trx) => {
        await checkIfMatch(request, reply, TaskSchema, () => lockTask(trx, request.actor, id))
        await deleteTask(trx, request.actor, id)
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/tasks/:id/complete',
    {
      schema: {
        operationId: 'completeTask',
        tags: ['tasks'],
        summary: 'Mark a task done',
        description: `${SCOPE} A task on a lead adds a task activity to its timeline. Done already: answered as it is.`,
        params: IdParams,
        response: { 200: ref(TaskSchema), ...problems(404) },
      },
    },
    async (request) => db.transaction().execute((trx) => completeTask(trx, request.actor, request.params.id)),
  )

  app.post(
    '/tasks/:id/reopen',
    {
      schema: {
        operationId: 'reopenTask',
        tags: ['tasks'],
        summary: 'Open a done task again',
        description: `${SCOPE} Open already: answered as it is.`,
        params: IdParams,
        response: { 200: ref(TaskSchema), ...problems(404) },
      },
    },
    async (request) => db.transaction().execute((trx) => reopenTask(trx, request.actor, request.params.id)),
  )
}
