// Changing one lead: create, update, status, assignee, trash and restore, each with its audit row and event.
import { sql, type Transaction } from 'kysely'
import { auditRows, type Changes, diff, writeAudit } from '../audit/write.js'
import { assertActiveUser } from '../auth/active-user.js'
import type { Actor } from '../auth/actor.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { visibleLeads } from '../auth/scope.js'
import { isForeignKeyViolation } from '../db/errors.js'
import type { DB, LeadChannel, LeadStatus } from '../db/types.js'
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors/domain.js'
import { type EventType, writeEvent } from '../events/outbox.js'
import { firstResponseOf, transactionTime } from '../pipeline/first-response.js'
import { type NewActivity, recordActivities } from '../timeline/record.js'
import { assertKnownLostReason, checkedCurrency, lostReasonFor, newLeadCurrency, storedAmount } from './deal.js'
import { getLead, LEAD_COLUMNS, type Lead, type LeadRow, withClient } from './queries.js'
import { assertTransition } from './transitions.js'

async function lockVisibleLead(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<LeadRow> {
  const lead = await visibleLeads(trx, actor)
    .select(LEAD_COLUMNS)
    .where('leads.id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  if (!lead) throw new NotFoundError('Lead')
  return lead
}

/** The lead as GET shows it, its row locked until the transaction ends (for an If-Match check). */
export async function lockLead(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<Lead> {
  await lockVisibleLead(trx, actor, id)
  return getLead(trx, actor, id)
}

/**
 * The lead's client must be live. FOR SHARE waits for a concurrent trash of the client to commit,
 * then sees it trashed: no live lead joins a trashed client.
 */
export async function assertLiveClient(trx: Transaction<DB>, clientId: number): Promise<void> {
  const client = await trx
    .selectFrom('clients')
    .select('id')
    .where('id', '=', clientId)
    .where('deleted_at', 'is', null)
    .forShare()
    .executeTakeFirst()
  if (!client) throw ValidationError.field('client_id', 'no such client')
}

/** A client that does not exist (the foreign key answers it), or an assignee deleted after our check. */
async function translateForeignKeys<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    if (isForeignKeyViolation(error, 'leads_client_id_fkey')) throw ValidationError.field('client_id', 'no such client')
    if (isForeignKeyViolation(error, 'leads_assigned_to_fkey')) {
      throw ValidationError.field('assigned_to', 'no such active user')
    }
    throw error
  }
}

export interface NewLead {
  client_id: number
  channel: LeadChannel
  status?: LeadStatus
  admin_notes?: string | null
  sales_notes?: string | null
  assigned_to?: number | null
  amount?: string | null
  currency?: string
  expected_close_date?: string | null
  lost_reason?: string
}

/** Created by a person, or by a web form or WhatsApp (an actor that is no user) for an inbound lead. */
export async function createLead(trx: Transaction<DB>, actor: Actor, input: NewLead): Promise<Lead> {
  let assignedTo = input.assigned_to
  if (actor.role === 'sales') {
    if (assignedTo !== undefined && assignedTo !== actor.userId) {
      throw new ForbiddenError('Sales users create leads assigned to themselves only')
    }
    if (input.admin_notes !== undefined) throw new ForbiddenError('admin_notes is read-only for sales users')
    assignedTo = actor.userId
  }
  // The caller is an active user (authentication checked it): only someone else needs the check.
  const status = input.status ?? 'new'
  const currency = newLeadCurrency(input.currency)
  const lostReason = await lostReasonFor(trx, status, input.lost_reason)
  if (assignedTo != null && assignedTo !== actor.userId) await assertActiveUser(trx, assignedTo, 'assigned_to')
  await assertLiveClient(trx, input.client_id)
  // The new row comes back joined to its client from the insert itself, without a second read.
  const created = await translateForeignKeys(() =>
    withClient(
      trx
        .with('leads', (db) =>
          db
            .insertInto('leads')
            .values({
              client_id: input.client_id,
              channel: input.channel,
              status,
              admin_notes: input.admin_notes ?? null,
              sales_notes: input.sales_notes ?? null,
              assigned_to: assignedTo ?? null,
              created_by: actor.userId,
              amount: input.amount ?? null,
              currency,
              expected_close_date: input.expected_close_date ?? null,
              lost_reason: lostReason,
            })
            .returning(LEAD_COLUMNS),
        )
        .selectFrom('leads'),
    ).executeTakeFirstOrThrow(),
  )
  const { client: _client, ...row } = created
  await writeAudit(trx, actor, {
    table: 'leads',
    recordId: created.id,
    action: 'create',
    oldValues: null,
    newValues: row,
  })
  await writeEvent(trx, actor, {
    type: 'lead.created',
    resource: 'lead',
    id: created.id,
    old: null,
    new: row,
    object: created,
  })
  // Handed to someone by someone else (an admin, a form's rule): the timeline says so.
  if (created.assigned_to !== null && created.assigned_to !== actor.userId) {
    await recordActivities(trx, actor, [timelineEntry(created.id, 'assigned_to', null, created.assigned_to)])
  }
  return created
}

/** The timeline row of a status change or an assignment. */
export function timelineEntry(
  leadId: number,
  field: 'status' | 'assigned_to',
  from: unknown,
  to: unknown,
): NewActivity {
  return { lead_id: leadId, type: field === 'status' ? 'status_change' : 'assignment', meta: { from, to } }
}

export interface LeadPatch {
  client_id?: number
  channel?: LeadChannel
  admin_notes?: string | null
  sales_notes?: string | null
  amount?: string | null
  currency?: string
  expected_close_date?: string | null
  lost_reason?: string
}

/** One statement: the update, its audit row, and the lead joined to its client. */
export async function applyChange(
  trx: Transaction<DB>,
  actor: Actor,
  eventType: EventType,
  current: LeadRow,
  changes: Changes<LeadRow>,
  options: { statusChanged?: boolean } = {},
): Promise<Lead> {
  // Moving out of `new` answers the lead, unless something answered it before.
  const firstResponse =
    options.statusChanged && current.status === 'new' && current.first_response_at === null
      ? await firstResponseOf(trx, new Date(current.created_at), await transactionTime(trx))
      : undefined
  const audit = auditRows(actor, {
    table: 'leads',
    recordId: current.id,
    action: 'update',
    oldValues: changes.oldValues,
    newValues: changes.newValues,
  })
  const lead = await translateForeignKeys(() =>
    withClient(
      trx
        .with('audit', (db) => db.insertInto('audit_logs').values(audit))
        .with('leads', (db) =>
          db
            .updateTable('leads')
            .set({
              ...changes.set,
              ...(options.statusChanged && { status_changed_at: sql<Date>`now()` }),
              // The very instant of status_changed_at (the JS time has only milliseconds).
              ...(firstResponse && { ...firstResponse, first_response_at: sql<Date>`now()` }),
              updated_at: sql`now()`,
            })
            .where('id', '=', current.id)
            .returning(LEAD_COLUMNS),
        )
        .selectFrom('leads'),
    ).executeTakeFirstOrThrow(),
  )
  await writeEvent(trx, actor, {
    type: eventType,
    resource: 'lead',
    id: lead.id,
    old: changes.oldValues,
    new: changes.newValues,
    object: lead,
  })
  const fields = (['status', 'assigned_to'] as const).filter((field) => field in changes.set)
  await recordActivities(
    trx,
    actor,
    fields.map((field) => timelineEntry(lead.id, field, changes.oldValues[field], changes.newValues[field])),
  )
  return lead
}

/** Writes checked changes to a locked lead: one audit row, one event per kind of change, as the JSON routes publish them. */
export async function applyLeadChanges(
  trx: Transaction<DB>,
  actor: Actor,
  current: LeadRow,
  changes: Changes<LeadRow>,
): Promise<void> {
  const statusChanged = changes.set.status !== undefined
  const assigneeChanged = changes.set.assigned_to !== undefined
  const eventType = statusChanged ? 'lead.status_changed' : assigneeChanged ? 'lead.assigned' : 'lead.updated'
  const lead = await applyChange(trx, actor, eventType, current, changes, { statusChanged })
  if (statusChanged && assigneeChanged) {
    await writeEvent(trx, actor, {
      type: 'lead.assigned',
      resource: 'lead',
      id: lead.id,
      old: { assigned_to: current.assigned_to },
      new: { assigned_to: lead.assigned_to },
      object: lead,
    })
  }
}

export async function updateLead(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  id: number,
  patch: LeadPatch,
): Promise<Lead> {
  const current = await lockVisibleLead(trx, actor, id)
  if (actor.role === 'sales' && patch.admin_notes !== undefined) {
    throw new ForbiddenError('admin_notes is read-only for sales users')
  }
  checkedCurrency(patch.currency)
  if (patch.lost_reason !== undefined) {
    if (current.status !== 'discarded') {
      throw ValidationError.field('lost_reason', 'is only for a discarded lead: send it with PATCH /leads/{id}/status')
    }
    await assertKnownLostReason(trx, patch.lost_reason)
  }
  const changes = diff(current, { ...patch, amount: storedAmount(patch.amount) })
  if (!changes) return getLead(trx, actor, id)
  if (changes.set.client_id !== undefined) await assertLiveClient(trx, changes.set.client_id)
  return applyChange(trx, actor, 'lead.updated', current, changes)
}

export async function changeLeadStatus(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  id: number,
  status: LeadStatus,
  lostReason?: string,
): Promise<Lead> {
  const current = await lockVisibleLead(trx, actor, id)
  if (status !== current.status) assertTransition(current.status, status, actor.role)
  const changes = diff(current, { status, lost_reason: await lostReasonFor(trx, status, lostReason) })
  // Setting the current status again is a no-op: no audit row, no moved timestamps.
  if (!changes) return getLead(trx, actor, id)
  // A discarded lead given another reason changes its reason only.
  if (changes.set.status === undefined) return applyChange(trx, actor, 'lead.updated', current, changes)
  return applyChange(trx, actor, 'lead.status_changed', current, changes, { statusChanged: true })
}

/** Admin and management only: the route admits no other role. */
export async function assignLead(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  id: number,
  assignedTo: number | null,
): Promise<Lead> {
  const current = await lockVisibleLead(trx, actor, id)
  const changes = diff(current, { assigned_to: assignedTo })
  if (!changes) return getLead(trx, actor, id)
  if (assignedTo !== null) await assertActiveUser(trx, assignedTo, 'assigned_to')
  return applyChange(trx, actor, 'lead.assigned', current, changes)
}

/** Moves a lead to the trash: it vanishes from every read, stat and export until restored. */
export async function trashLead(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<void> {
  const current = await lockVisibleLead(trx, actor, id)
  const lead = await getLead(trx, actor, id)
  await trx
    .updateTable('leads')
    .set({ deleted_at: sql`now()`, deleted_by: actor.userId })
    .where('id', '=', id)
    .execute()
  await writeAudit(trx, actor, { table: 'leads', recordId: id, action: 'delete', oldValues: current, newValues: null })
  await writeEvent(trx, actor, { type: 'lead.deleted', resource: 'lead', id, old: current, new: null, object: lead })
}

/**
 * Takes a lead out of the trash. A lead whose client is in the trash stays there (409
 * client_trashed): restoring the client brings back the leads trashed with it.
 */
export async function restoreLead(trx: Transaction<DB>, actor: Actor, id: number): Promise<Lead> {
  const trashed = await trx
    .selectFrom('leads')
    .select(LEAD_COLUMNS)
    .where('id', '=', id)
    .where('deleted_at', 'is not', null)
    .forUpdate()
    .executeTakeFirst()
  if (!trashed) throw new NotFoundError('Trashed lead')
  const clientLive = await trx
    .selectFrom('clients')
    .select('id')
    .where('id', '=', trashed.client_id)
    .where('deleted_at', 'is', null)
    .forShare()
    .executeTakeFirst()
  if (!clientLive) {
    throw new ConflictError(
      'client_trashed',
      `The lead's client ${trashed.client_id} is in the trash: restore the client, which brings back the leads trashed with it`,
      { client_id: trashed.client_id },
    )
  }
  const restored = await withClient(
    trx
      .with('leads', (db) =>
        db
          .updateTable('leads')
          .set({ deleted_at: null, deleted_by: null })
          .where('id', '=', id)
          .returning(LEAD_COLUMNS),
      )
      .selectFrom('leads'),
  ).executeTakeFirstOrThrow()
  const { client: _client, ...row } = restored
  await writeAudit(trx, actor, { table: 'leads', recordId: id, action: 'restore', oldValues: null, newValues: row })
  await writeEvent(trx, actor, {
    type: 'lead.restored',
    resource: 'lead',
    id,
    old: null,
    new: row,
    object: restored,
  })
  return restored
}
