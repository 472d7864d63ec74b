import { Type } from '@sinclair/typebox'
import {
  DateOrTimestamp,
  DateTime,
  Id,
  Nullable,
  NullableDateTime,
  Page,
  pageQuery,
  ref,
  StringEnum,
} from '../http/schemas.js'

export const MAX_TASK_TITLE = 200
export const MAX_TASK_NOTES = 5000

const Title = Type.String({ minLength: 1, maxLength: MAX_TASK_TITLE, pattern: '\\S' })
const Notes = Type.String({ maxLength: MAX_TASK_NOTES })
const Instant = Type.String({ format: 'date-time', description: 'ISO 8601 with Z or an offset' })

export const TaskSchema = Type.Object(
  {
    id: Id,
    title: Type.String(),
    notes: Nullable(Type.String()),
    due_at: DateTime,
    remind_at: {
      ...NullableDateTime,
      description: 'When the assignee is reminded; null: at due_at',
    },
    lead_id: Nullable(Type.Integer({ description: 'The lead the task hangs off, if any' })),
    client_id: Nullable(
      Type.Integer({
        description: 'The client the task hangs off: its own, or for a task on a lead the lead’s client as it is now',
      }),
    ),
    assigned_to: Nullable(Type.Integer({ description: 'The user who does it; null once that user was deleted' })),
    created_by: Nullable(Type.Integer()),
    done_at: { ...NullableDateTime, description: 'When it was completed; null while open' },
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Task', additionalProperties: false },
)

export const TaskCreateSchema = Type.Object(
  {
    title: Title,
    notes: Type.Optional(Nullable(Notes)),
    due_at: Instant,
    remind_at: Type.Optional(Nullable(Instant)),
    lead_id: Type.Optional(Nullable(Id)),
    client_id: Type.Optional(
      Nullable({ ...Id, description: 'With lead_id: omit it, or send the lead’s own client; stored with the lead' }),
    ),
    assigned_to: Type.Optional(Nullable({ ...Id, description: 'Omitted: the caller. Sales users: only themselves' })),
  },
  {
    $id: 'TaskCreate',
    additionalProperties: false,
    examples: [{ title: 'Llamar para confirmar la cotización', due_at: '2026-12-09T14:00:00-04:00', lead_id: 42 }],
  },
)

export const TaskUpdateSchema = Type.Object(
  {
    title: Type.Optional(Title),
    notes: Type.Optional(Nullable(Notes)),
    due_at: Type.Optional(Instant),
    remind_at: Type.Optional(Nullable(Instant)),
    lead_id: Type.Optional(Nullable(Id)),
    client_id: Type.Optional(Nullable(Id)),
    assigned_to: Type.Optional(Nullable(Id)),
  },
  {
    $id: 'TaskUpdate',
    additionalProperties: false,
    description: 'done_at changes only through POST /tasks/{id}/complete and /reopen',
    examples: [{ due_at: '2026-12-10T09:00:00-04:00' }],
  },
)

export const TASK_STATUSES = ['open', 'done', 'overdue', 'due_today'] as const
export const TASK_SORTS = ['due_at', 'created_at', 'updated_at'] as const

export const TaskListQuery = Type.Object(
  {
    assigned_to: Type.Optional(
      Type.Array(Type.Union([Id, StringEnum(['me', 'none'] as const)]), {
        maxItems: 20,
        description: 'Repeatable: user ids, me, or none (unassigned); a task matches any of them',
      }),
    ),
    lead_id: Type.Optional(Id),
    client_id: Type.Optional({ ...Id, description: 'Tasks of this client and of its leads' }),
    status: Type.Optional(
      StringEnum(TASK_STATUSES, {
        description:
          'open: not done; done; overdue: open and past due_at; due_today: open and due on the caller’s today, from midnight to midnight in their time_zone',
      }),
    ),
    due_from: Type.Optional(DateOrTimestamp),
    due_to: Type.Optional(DateOrTimestamp),
    ...pageQuery(TASK_SORTS, 'due_at'),
  },
  { additionalProperties: false },
)

export const TaskPageSchema = Page(ref(TaskSchema), 'TaskPage')

export const taskSchemas = [TaskSchema, TaskCreateSchema, TaskUpdateSchema, TaskPageSchema]
