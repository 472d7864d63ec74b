// Tasks removed with what the trash purges: recorded, not left to the foreign key's cascade.
import type { ExpressionBuilder, Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { DB } from '../db/types.js'
import { writeEvent } from '../events/outbox.js'
import { selectTask } from './queries.js'

/**
 * The tasks of leads and clients purged from the trash go with them, each with its `purge` audit
 * row and `task.deleted` event, before the delete would cascade to them unrecorded.
 */
export async function purgeTasksOf(
  trx: Transaction<DB>,
  actor: Actor,
  parents: { leadIds: number[]; clientIds: number[] },
): Promise<void> {
  if (parents.leadIds.length === 0 && parents.clientIds.length === 0) return
  const doomed = (eb: ExpressionBuilder<DB, 'tasks'>) =>
    eb.or([
      ...(parents.leadIds.length > 0 ? [eb('tasks.lead_id', 'in', parents.leadIds)] : []),
      ...(parents.clientIds.length > 0 ? [eb('tasks.client_id', 'in', parents.clientIds)] : []),
    ])
  const tasks = await selectTask(
    trx
      .selectFrom('tasks')
      .leftJoin('leads', 'leads.id', 'tasks.lead_id')
      .leftJoin('clients', 'clients.id', 'tasks.client_id')
      .where(doomed)
      .orderBy('tasks.id'),
  ).execute()
  if (tasks.length === 0) return
  const rows = await trx.deleteFrom('tasks').where(doomed).returningAll().execute()
  const rowOf = new Map(rows.map((row) => [row.id, row]))
  await writeAudit(
    trx,
    actor,
    // As the trash's purges do: the row purged in new_values.
    rows.map((row) => ({ table: 'tasks', recordId: row.id, action: 'purge', oldValues: null, newValues: { ...row } })),
  )
  await writeEvent(
    trx,
    actor,
    tasks.flatMap((task) => {
      const row = rowOf.get(task.id)
      return row
        ? [
            {
              type: 'task.deleted' as const,
              resource: 'task' as const,
              id: task.id,
              old: { ...row },
              new: null,
              object: task,
            },
          ]
        : []
    }),
  )
}
