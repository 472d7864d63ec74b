// Changing tasks: create, update, complete, reopen, delete, each with its audit row and event, and
// the next_task_at of the leads concerned kept in the same transaction.
import { sql, type Transaction } from 'kysely'
import { type AuditValues, diff, writeAudit } from '../audit/write.js'
import { assertActiveUser } from '../auth/active-user.js'
import type { Actor } from '../auth/actor.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { visibleLeads } from '../auth/scope.js'
import type { DB } from '../db/types.js'
import { ForbiddenError, NotFoundError, ValidationError } from '../errors/domain.js'
import { type EventType, writeEvent } from '../events/outbox.js'
import { assertLiveClient } from '../leads/commands.js'
import { recordActivities } from '../timeline/record.js'
import { selectTask, type Task, visibleTasks } from './queries.js'
import { armReminder, reminderTime } from './reminders.js'

export interface NewTask {
  title: string
  notes?: string | null
  due_at: string
  remind_at?: string | null
  lead_id?: number | null
  client_id?: number | null
  assigned_to?: number | null
}

export type TaskPatch = Partial<NewTask>

/** The stored columns of a task (a lead's task keeps no client of its own). */
interface TaskRow extends Omit<Task, 'client_id'> {
  client_id: number | null
}

const TASK_ROW_COLUMNS = [
  'tasks.id',
  'tasks.title',
  'tasks.notes',
  'tasks.due_at',
  'tasks.remind_at',
  'tasks.lead_id',
  'tasks.client_id',
  'tasks.assigned_to',
  'tasks.created_by',
  'tasks.done_at',
  'tasks.created_at',
  'tasks.updated_at',
] as const

/**
 * Sets next_task_at of these leads to the earliest open task's due_at (null without one), writing
 * only the leads whose value changes. The callers hold these leads' rows locked (lockLeads) from
 * before their change of tasks: a concurrent change of the same lead's tasks waits, and the
 * recount sees every committed task.
 */
export async function refreshNextTaskAt(trx: Transaction<DB>, leadIds: Array<number | null>): Promise<void> {
  const ids = [...new Set(leadIds.filter((id): id is number => id !== null))]
  if (ids.length === 0) return
  await sql`
    update leads set next_task_at = next.due_at
    from (
      select leads.id,
        (select min(tasks.due_at) from tasks where tasks.lead_id = leads.id and tasks.done_at is null) as due_at
      from leads where leads.id in (${sql.join(ids)})
    ) as next
    where leads.id = next.id and leads.next_task_at is distinct from next.due_at`.execute(trx)
}

/** Locks these leads in id order (two changes of tasks on the same leads cannot deadlock). */
async function lockLeads(trx: Transaction<DB>, leadIds: Array<number | null>): Promise<void> {
  const ids = [...new Set(leadIds.filter((id): id is number => id !== null))]
  if (ids.length === 0) return
  await trx.selectFrom('leads').select('id').where('id', 'in', ids).orderBy('id').forUpdate().execute()
}

/**
 * The lead a task is put on: live and (for sales users) theirs, locked until the transaction ends
 * (a concurrent trash waits, or is seen). Its client, to check a client_id sent with it.
 */
async function lockParentLead(trx: Transaction<DB>, actor: AuthenticatedActor, leadId: number): Promise<number> {
  const lead = await visibleLeads(trx, actor)
    .select(['leads.id', 'leads.client_id'])
    .where('leads.id', '=', leadId)
    .forUpdate()
    .executeTakeFirst()
  if (!lead)
    throw ValidationError.field('lead_id', `no lead with id ${leadId} that you may see (or it is in the trash)`)
  return lead.client_id
}

/** Sales users keep tasks to themselves; anyone else is checked to be an active user. */
async function assertAssignee(trx: Transaction<DB>, actor: AuthenticatedActor, assignedTo: number | null) {
  if (actor.role === 'sales' && assignedTo !== actor.userId) {
    throw new ForbiddenError('Sales users assign tasks to themselves only')
  }
  if (assignedTo !== null && assignedTo !== actor.userId) await assertActiveUser(trx, assignedTo, 'assigned_to')
}

/** A task's lead and client as stored: with a lead, a client_id sent must be the lead's, and is not stored. */
async function parentsOf(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  leadId: number | null,
  clientId: number | null | undefined,
): Promise<{ lead_id: number | null; client_id: number | null }> {
  if (leadId !== null) {
    const leadClient = await lockParentLead(trx, actor, leadId)
    if (clientId != null && clientId !== leadClient) {
      throw ValidationError.field('client_id', `must be the lead's client (${leadClient}) or left out`)
    }
    return { lead_id: leadId, client_id: null }
  }
  if (clientId != null) await assertLiveClient(trx, clientId)
  return { lead_id: null, client_id: clientId ?? null }
}

async function readTask(trx: Transaction<DB>, id: number): Promise<Task> {
  return selectTask(
    trx
      .selectFrom('tasks')
      .leftJoin('leads', 'leads.id', 'tasks.lead_id')
      .leftJoin('clients', 'clients.id', 'tasks.client_id')
      .where('tasks.id', '=', id),
  ).executeTakeFirstOrThrow()
}

async function publish(
  trx: Transaction<DB>,
  actor: Actor,
  type: EventType,
  task: Task,
  old: AuditValues | null,
  next: AuditValues | null,
): Promise<void> {
  await writeEvent(trx, actor, { type, resource: 'task', id: task.id, old, new: next, object: task })
}

export async function createTask(trx: Transaction<DB>, actor: AuthenticatedActor, input: NewTask): Promise<Task> {
  const assignedTo = input.assigned_to === undefined ? actor.userId : input.assigned_to
  await assertAssignee(trx, actor, assignedTo)
  const parents = await parentsOf(trx, actor, input.lead_id ?? null, input.client_id)
  const row = await trx
    .insertInto('tasks')
    .values({
      title: input.title,
      notes: input.notes ?? null,
      due_at: new Date(input.due_at),
      remind_at: input.remind_at == null ? null : new Date(input.remind_at),
      ...parents,
      assigned_to: assignedTo,
      created_by: actor.userId,
    })
    .returning(TASK_ROW_COLUMNS)
    .executeTakeFirstOrThrow()
  await armReminder(trx, row.id)
  await refreshNextTaskAt(trx, [row.lead_id])
  const task = await readTask(trx, row.id)
  await writeAudit(trx, actor, { table: 'tasks', recordId: row.id, action: 'create', oldValues: null, newValues: row })
  await publish(trx, actor, 'task.created', task, null, row)
  return task
}

/** The task's stored row, if the actor may see it, locked until the transaction ends. */
async function lockTaskRow(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<TaskRow> {
  const row = await visibleTasks(trx, actor)
    .select(TASK_ROW_COLUMNS)
    .where('tasks.id', '=', id)
    .forUpdate('tasks')
    .executeTakeFirst()
  if (!row) throw new NotFoundError('Task')
  return row
}

/** The task as GET shows it, its row locked until the transaction ends (for an If-Match check). */
export async function lockTask(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<Task> {
  await lockTaskRow(trx, actor, id)
  return readTask(trx, id)
}

/**
 * Where a patch puts the task. lead_id: a lead (client_id left out or the lead's own), or null
 * (then client_id, or nothing). client_id alone moves a task that is on no lead; on a task on a
 * lead it may only name that lead's client.
 */
async function patchedParents(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  current: TaskRow,
  patch: TaskPatch,
): Promise<{ lead_id?: number | null; client_id?: number | null }> {
  if (patch.lead_id !== undefined) {
    if (patch.lead_id === current.lead_id && patch.client_id === undefined) return {}
    return parentsOf(trx, actor, patch.lead_id, patch.client_id)
  }
  if (patch.client_id === undefined) return {}
  if (current.lead_id === null) return parentsOf(trx, actor, null, patch.client_id)
  const lead = await trx.selectFrom('leads').select('client_id').where('id', '=', current.lead_id).executeTakeFirst()
  if (patch.client_id !== lead?.client_id) {
    throw ValidationError.field('client_id', 'a task on a lead has the lead’s client; send lead_id: null to move it')
  }
  return {}
}

export async function updateTask(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  id: number,
  patch: TaskPatch,
): Promise<Task> {
  const current = await lockTaskRow(trx, actor, id)
  if (patch.assigned_to !== undefined && patch.assigned_to !== current.assigned_to) {
    await assertAssignee(trx, actor, patch.assigned_to)
  }
  // The lead it leaves and the one it joins, in id order: two tasks crossing between the same two
  // leads at once then queue instead of deadlocking.
  await lockLeads(trx, [current.lead_id, patch.lead_id ?? null])
  const parents = await patchedParents(trx, actor, current, patch)
  const changes = diff<TaskRow>(current, {
    title: patch.title,
    notes: patch.notes,
    due_at: patch.due_at === undefined ? undefined : new Date(patch.due_at),
    remind_at: patch.remind_at == null ? patch.remind_at : new Date(patch.remind_at),
    assigned_to: patch.assigned_to,
    ...parents,
  })
  if (!changes) return readTask(trx, id)
  await trx
    .updateTable('tasks')
    .set({ ...changes.set, updated_at: sql`now()` })
    .where('id', '=', id)
    .execute()
  // A new reminder time re-arms the reminder, even one already sent for the old time.
  const moved = reminderTime({ ...current, ...changes.set }).getTime() !== reminderTime(current).getTime()
  if (moved) await armReminder(trx, id)
  await refreshNextTaskAt(trx, [current.lead_id, parents.lead_id ?? null])
  const task = await readTask(trx, id)
  await writeAudit(trx, actor, {
    table: 'tasks',
    recordId: id,
    action: 'update',
    oldValues: changes.oldValues,
    newValues: changes.newValues,
  })
  await publish(trx, actor, 'task.updated', task, changes.oldValues, changes.newValues)
  return task
}

/** Marks the task done (done again: no change) and writes a `task` activity on its lead. */
export async function completeTask(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<Task> {
  const current = await lockTaskRow(trx, actor, id)
  if (current.done_at !== null) return readTask(trx, id)
  await lockLeads(trx, [current.lead_id])
  const done = await trx
    .updateTable('tasks')
    .set({ done_at: sql`now()`, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning('done_at')
    .executeTakeFirstOrThrow()
  await refreshNextTaskAt(trx, [current.lead_id])
  const task = await readTask(trx, id)
  const [oldValues, newValues] = [{ done_at: null }, { done_at: done.done_at }]
  await writeAudit(trx, actor, { table: 'tasks', recordId: id, action: 'update', oldValues, newValues })
  await publish(trx, actor, 'task.completed', task, oldValues, newValues)
  if (current.lead_id !== null) {
    await recordActivities(trx, actor, [
      { lead_id: current.lead_id, type: 'task', body: current.title, meta: { task_id: id, due_at: current.due_at } },
    ])
  }
  return task
}

/** Opens a done task again (open already: no change); its activity stays in the timeline. */
export async function reopenTask(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<Task> {
  const current = await lockTaskRow(trx, actor, id)
  if (current.done_at === null) return readTask(trx, id)
  await lockLeads(trx, [current.lead_id])
  await trx.updateTable('tasks').set({ done_at: null, updated_at: sql`now()` }).where('id', '=', id).execute()
  // A reminder time that passed while the task was done, or was already sent, is not sent now.
  await armReminder(trx, id)
  await refreshNextTaskAt(trx, [current.lead_id])
  const task = await readTask(trx, id)
  const [oldValues, newValues] = [{ done_at: current.done_at }, { done_at: null }]
  await writeAudit(trx, actor, { table: 'tasks', recordId: id, action: 'update', oldValues, newValues })
  await publish(trx, actor, 'task.updated', task, oldValues, newValues)
  return task
}

/** Deletes the task for good: the audit row keeps what it was. */
export async function deleteTask(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<void> {
  const current = await lockTaskRow(trx, actor, id)
  await lockLeads(trx, [current.lead_id])
  const task = await readTask(trx, id)
  await trx.deleteFrom('tasks').where('id', '=', id).execute()
  await refreshNextTaskAt(trx, [current.lead_id])
  const oldValues = { ...current }
  await writeAudit(trx, actor, { table: 'tasks', recordId: id, action: 'delete', oldValues, newValues: null })
  await publish(trx, actor, 'task.deleted', task, oldValues, null)
}

/** Sets one field on many tasks, each with its audit row and `task.updated` event. */
async function changeTasks(
  trx: Transaction<DB>,
  actor: Actor,
  field: 'assigned_to' | 'client_id',
  from: number,
  to: number | null,
): Promise<void> {
  const rows = await trx
    .updateTable('tasks')
    .set({ [field]: to, updated_at: sql`now()` })
    .where(`tasks.${field}`, '=', from)
    .returning('id')
    .execute()
  if (rows.length === 0) return
  const ids = rows.map((row) => row.id)
  const tasks = await selectTask(
    trx
      .selectFrom('tasks')
      .leftJoin('leads', 'leads.id', 'tasks.lead_id')
      .leftJoin('clients', 'clients.id', 'tasks.client_id')
      .where('tasks.id', 'in', ids)
      .orderBy('tasks.id'),
  ).execute()
  const [oldValues, newValues] = [{ [field]: from }, { [field]: to }]
  await writeAudit(
    trx,
    actor,
    tasks.map((task) => ({
      table: 'tasks' as const,
      recordId: task.id,
      action: 'update' as const,
      oldValues,
      newValues,
    })),
  )
  await writeEvent(
    trx,
    actor,
    tasks.map((task) => ({
      type: 'task.updated' as const,
      resource: 'task' as const,
      id: task.id,
      old: oldValues,
      new: newValues,
      object: task,
    })),
  )
}

/** A deleted user's tasks become unassigned, in the transaction that deletes the user. */
export async function unassignTasksOf(trx: Transaction<DB>, actor: Actor, userId: number): Promise<void> {
  await changeTasks(trx, actor, 'assigned_to', userId, null)
}

/** A merged duplicate's own tasks move to the client kept (its leads' tasks follow their leads). */
export async function moveTasksOfClient(trx: Transaction<DB>, actor: Actor, fromId: number, toId: number) {
  await changeTasks(trx, actor, 'client_id', fromId, toId)
}
