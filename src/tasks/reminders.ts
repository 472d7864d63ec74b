// Task reminders: at remind_at (else due_at) the workers claim the task and write its one `task.due`
// event, from which the usual fan-out mails the assignee and posts to webhooks.
import { sql, type Transaction } from 'kysely'
import { systemActor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { writeEvent } from '../events/outbox.js'
import { countAttempt } from '../metrics/registry.js'
import { selectTask } from './queries.js'

/** When a task's reminder falls due: its remind_at, else its due_at. */
export function reminderTime(task: { due_at: Date; remind_at: Date | null }): Date {
  return task.remind_at ?? task.due_at
}

/**
 * Arms the task's reminder for its current reminder time, or counts it as passed when that time
 * is not in the future: nothing is sent for a time set in the past, or one that passed while the
 * task was done. Called when a task is created, moved (due_at, remind_at) or reopened.
 */
export async function armReminder(trx: Transaction<DB>, id: number): Promise<void> {
  await trx
    .updateTable('tasks')
    .set({
      reminded_for: sql`case when coalesce(remind_at, due_at) <= now() then coalesce(remind_at, due_at) end`,
    })
    .where('id', '=', id)
    .execute()
}

/**
 * Claims the open tasks whose reminder time has come and writes their `task.due` events, in one
 * transaction: the claim (reminded_for set to the reminder time) and the event commit together, and
 * FOR UPDATE SKIP LOCKED keeps two instances off the same task, so each reminder is written once.
 * A task whose lead or client is in the trash when its time comes is claimed without an event.
 * Returns how many tasks it claimed.
 */
export async function remindDueTasks(db: Database, limit: number): Promise<number> {
  return countAttempt('reminder', () => claimDueReminders(db, limit))
}

async function claimDueReminders(db: Database, limit: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const claimed = await sql<{ id: number }>`
      update tasks set reminded_for = coalesce(remind_at, due_at)
      where id in (
        select id from tasks
        where done_at is null
          and reminded_for is distinct from coalesce(remind_at, due_at)
          and coalesce(remind_at, due_at) <= now()
        order by coalesce(remind_at, due_at), id
        limit ${limit}
        for update skip locked
      )
      returning id`.execute(trx)
    if (claimed.rows.length === 0) return 0
    const tasks = await selectTask(
      trx
        .selectFrom('tasks')
        .leftJoin('leads', 'leads.id', 'tasks.lead_id')
        .leftJoin('clients', 'clients.id', 'tasks.client_id')
        .where(
          'tasks.id',
          'in',
          claimed.rows.map((row) => row.id),
        )
        .where((eb) =>
          eb.and([
            eb.or([eb('tasks.lead_id', 'is', null), eb('leads.deleted_at', 'is', null)]),
            eb.or([eb('tasks.client_id', 'is', null), eb('clients.deleted_at', 'is', null)]),
          ]),
        )
        .orderBy('tasks.id'),
    ).execute()
    if (tasks.length > 0) {
      await writeEvent(
        trx,
        systemActor(),
        tasks.map((task) => ({
          type: 'task.due' as const,
          resource: 'task' as const,
          id: task.id,
          old: null,
          new: { reminder_at: reminderTime(task) },
          object: task,
        })),
      )
    }
    return claimed.rows.length
  })
}
