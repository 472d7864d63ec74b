// Changes that reach every lead of a client or a user: trashed, restored or moved with the client, unassigned.
import { sql, type Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { DB } from '../db/types.js'
import { writeEvent } from '../events/outbox.js'
import { recordActivities } from '../timeline/record.js'
import { timelineEntry } from './commands.js'
import { LEAD_COLUMNS, withClient } from './queries.js'

/** Trashes every live lead of a client, one audit row and event each (a client trashed with cascade). */
export async function trashLeadsOfClient(trx: Transaction<DB>, actor: Actor, clientId: number): Promise<number> {
  const objects = await withClient(
    trx.selectFrom('leads').where('leads.client_id', '=', clientId).where('leads.deleted_at', 'is', null),
  ).execute()
  const trashed = await trx
    .updateTable('leads')
    .set({ deleted_at: sql`now()`, deleted_by: actor.userId })
    .where('client_id', '=', clientId)
    .where('deleted_at', 'is', null)
    .returning(LEAD_COLUMNS)
    .execute()
  await writeAudit(
    trx,
    actor,
    trashed.map((lead) => ({ table: 'leads', recordId: lead.id, action: 'delete', oldValues: lead, newValues: null })),
  )
  const objectOf = new Map(objects.map((lead) => [lead.id, lead]))
  await writeEvent(
    trx,
    actor,
    trashed.map((lead) => ({
      type: 'lead.deleted',
      resource: 'lead',
      id: lead.id,
      old: lead,
      new: null,
      object: objectOf.get(lead.id) ?? lead,
    })),
  )
  return trashed.length
}

/**
 * Restores the leads trashed together with their client: those whose deleted_at is the client's
 * (one transaction's `now()`). Leads trashed on their own before stay in the trash.
 */
export async function restoreLeadsOfClient(trx: Transaction<DB>, actor: Actor, clientId: number): Promise<number> {
  const restored = await withClient(
    trx
      .with('leads', (db) =>
        db
          .updateTable('leads')
          .set({ deleted_at: null, deleted_by: null })
          .where('client_id', '=', clientId)
          .where('deleted_at', '=', (eb) =>
            eb.selectFrom('clients').select('clients.deleted_at').where('clients.id', '=', clientId),
          )
          .returning(LEAD_COLUMNS),
      )
      .selectFrom('leads'),
  ).execute()
  await writeAudit(
    trx,
    actor,
    restored.map(({ client: _client, ...row }) => ({
      table: 'leads',
      recordId: row.id,
      action: 'restore',
      oldValues: null,
      newValues: row,
    })),
  )
  await writeEvent(
    trx,
    actor,
    restored.map(({ client: _client, ...row }, index) => ({
      type: 'lead.restored',
      resource: 'lead',
      id: row.id,
      old: null,
      new: row,
      object: restored[index],
    })),
  )
  return restored.length
}

/** Moves every live lead of a client to another (a merge), one audit row (`merge`) and event each. */
export async function moveLeadsOfClient(
  trx: Transaction<DB>,
  actor: Actor,
  fromId: number,
  toId: number,
): Promise<number[]> {
  const moved = await withClient(
    trx
      .with('leads', (db) =>
        db
          .updateTable('leads')
          .set({ client_id: toId, updated_at: sql`now()` })
          .where('client_id', '=', fromId)
          .where('deleted_at', 'is', null)
          .returning(LEAD_COLUMNS),
      )
      .selectFrom('leads'),
  ).execute()
  const change = { old: { client_id: fromId }, new: { client_id: toId } }
  await writeAudit(
    trx,
    actor,
    moved.map((lead) => ({
      table: 'leads',
      recordId: lead.id,
      action: 'merge',
      oldValues: change.old,
      newValues: change.new,
    })),
  )
  await writeEvent(
    trx,
    actor,
    moved.map((lead) => ({ type: 'lead.updated', resource: 'lead', id: lead.id, ...change, object: lead })),
  )
  return moved.map((lead) => lead.id)
}

/** Unassigns every lead of a user about to be deleted, one audit row each. */
export async function unassignLeadsOf(trx: Transaction<DB>, actor: Actor, userId: number): Promise<void> {
  const unassigned = await trx
    .updateTable('leads')
    .set({ assigned_to: null, updated_at: sql`now()` })
    .where('assigned_to', '=', userId)
    .returning('id')
    .execute()
  if (unassigned.length === 0) return
  await writeAudit(
    trx,
    actor,
    unassigned.map((lead) => ({
      table: 'leads',
      recordId: lead.id,
      action: 'update',
      oldValues: { assigned_to: userId },
      newValues: { assigned_to: null },
    })),
  )
  // Trashed leads are unassigned too (the user goes), but only live ones are announced.
  const objects = await withClient(
    trx
      .selectFrom('leads')
      .where(
        'leads.id',
        'in',
        unassigned.map((lead) => lead.id),
      )
      .where('leads.deleted_at', 'is', null),
  ).execute()
  await writeEvent(
    trx,
    actor,
    objects.map((lead) => ({
      type: 'lead.assigned',
      resource: 'lead',
      id: lead.id,
      old: { assigned_to: userId },
      new: { assigned_to: null },
      object: lead,
    })),
  )
  await recordActivities(
    trx,
    actor,
    unassigned.map((lead) => timelineEntry(lead.id, 'assigned_to', userId, null)),
  )
}
