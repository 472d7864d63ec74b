// Reading tasks: the columns, who sees which, one task, the list and its filters.
import { type SelectQueryBuilder, sql } from 'kysely'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { scopedAssignee } from '../auth/scope.js'
import type { Database } from '../db/database.js'
import { rangeConditions } from '../db/dates.js'
import { columnKey, type Page, type PageRequest, paginate, parseSort } from '../db/paginate.js'
import type { DB } from '../db/types.js'
import { NotFoundError } from '../errors/domain.js'
import { type AssigneeFilter, parseAssignees } from '../leads/queries.js'
import { canonicalTimeZone, localDay } from '../time-zone.js'
import type { TASK_SORTS, TASK_STATUSES } from './schemas.js'

export interface Task {
  id: number
  title: string
  notes: string | null
  due_at: Date
  remind_at: Date | null
  lead_id: number | null
  client_id: number | null
  assigned_to: number | null
  created_by: number | null
  done_at: Date | null
  created_at: Date
  updated_at: Date
}

type TaskTables = 'tasks' | 'leads' | 'clients'

/** Tasks with the lead and the client they hang off (either may be absent). */
function tasksWithParents(db: Database) {
  return db
    .selectFrom('tasks')
    .leftJoin('leads', 'leads.id', 'tasks.lead_id')
    .leftJoin('clients', 'clients.id', 'tasks.client_id')
}

/** The task as the API shows it: a lead's task names the lead's client as it is now. */
export function selectTask<O>(query: SelectQueryBuilder<DB, TaskTables, O>) {
  return query.select([
    'tasks.id',
    'tasks.title',
    'tasks.notes',
    'tasks.due_at',
    'tasks.remind_at',
    'tasks.lead_id',
    sql<number | null>`coalesce(leads.client_id, tasks.client_id)`.as('client_id'),
    'tasks.assigned_to',
    'tasks.created_by',
    'tasks.done_at',
    'tasks.created_at',
    'tasks.updated_at',
  ])
}

/**
 * Every read of tasks starts here. A task whose lead or client is in the trash is gone with it
 * until restored; sales users see the tasks assigned to them and those on their own leads.
 */
export function visibleTasks(db: Database, actor: Pick<AuthenticatedActor, 'role' | 'userId'>) {
  const live = tasksWithParents(db).where((eb) =>
    eb.and([
      eb.or([eb('tasks.lead_id', 'is', null), eb('leads.deleted_at', 'is', null)]),
      eb.or([eb('tasks.client_id', 'is', null), eb('clients.deleted_at', 'is', null)]),
    ]),
  )
  const assignee = scopedAssignee(actor)
  if (assignee === undefined) return live
  return live.where((eb) => eb.or([eb('tasks.assigned_to', '=', assignee), eb('leads.assigned_to', '=', assignee)]))
}

export async function getTask(db: Database, actor: AuthenticatedActor, id: number): Promise<Task> {
  const task = await selectTask(visibleTasks(db, actor).where('tasks.id', '=', id)).executeTakeFirst()
  if (!task) throw new NotFoundError('Task')
  return task
}

export interface TaskListFilter extends PageRequest {
  assigned_to?: AssigneeFilter[]
  lead_id?: number
  client_id?: number
  status?: (typeof TASK_STATUSES)[number]
  due_from?: string
  due_to?: string
  sort: (typeof TASK_SORTS)[number] | `-${(typeof TASK_SORTS)[number]}`
}

/** The caller's zone: their own, or the server's default (also for a zone this runtime no longer knows). */
export async function callerTimeZone(db: Database, userId: number, defaultTimeZone: string): Promise<string> {
  const user = await db.selectFrom('users').select('time_zone').where('id', '=', userId).executeTakeFirst()
  return (user?.time_zone && canonicalTimeZone(user.time_zone)) || defaultTimeZone
}

export type TaskFilter = Omit<TaskListFilter, 'sort' | keyof PageRequest>

/**
 * The scoped tasks that match the filters of GET /tasks (and of the agenda). `timeZone` is the
 * caller's: where their today starts and ends for `status=due_today`.
 */
export function filteredTasks(db: Database, actor: AuthenticatedActor, filter: TaskFilter, timeZone: string) {
  let query = visibleTasks(db, actor)
  const assignees = parseAssignees(actor, filter.assigned_to)
  if (assignees) {
    const { ids, unassigned } = assignees
    query = query.where((eb) =>
      eb.or([
        ...(ids.length > 0 ? [eb('tasks.assigned_to', 'in', ids)] : []),
        ...(unassigned ? [eb('tasks.assigned_to', 'is', null)] : []),
      ]),
    )
  }
  if (filter.lead_id !== undefined) query = query.where('tasks.lead_id', '=', filter.lead_id)
  const clientId = filter.client_id
  if (clientId !== undefined) {
    query = query.where((eb) => eb.or([eb('tasks.client_id', '=', clientId), eb('leads.client_id', '=', clientId)]))
  }
  if (filter.status === 'done') query = query.where('tasks.done_at', 'is not', null)
  else if (filter.status !== undefined) query = query.where('tasks.done_at', 'is', null)
  if (filter.status === 'overdue') query = query.where('tasks.due_at', '<', sql<Date>`now()`)
  if (filter.status === 'due_today') {
    const today = localDay(new Date(), timeZone)
    query = query.where('tasks.due_at', '>=', today.start).where('tasks.due_at', '<', today.end)
  }
  for (const condition of rangeConditions('tasks.due_at', 'due', filter as unknown as Record<string, unknown>)) {
    query = query.where(condition)
  }
  return query
}

export async function listTasks(
  db: Database,
  actor: AuthenticatedActor,
  filter: TaskListFilter,
  timeZone: string,
): Promise<Page<Task>> {
  const query = filteredTasks(db, actor, filter, timeZone)
  const { column, direction } = parseSort(filter.sort)
  return paginate(db, {
    matching: query,
    select: selectTask,
    order: { keys: [columnKey(`tasks.${column}`, 'timestamp')], id: 'tasks.id', direction },
    page: filter,
    filters: filter,
  })
}
