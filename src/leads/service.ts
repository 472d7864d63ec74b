import { type Selectable, type SelectQueryBuilder, type SqlBool, sql, type Transaction } from 'kysely'
import { jsonBuildObject } from 'kysely/helpers/postgres'
import { auditRows, type Changes, diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { dateRange, rangeConditions } from '../db/dates.js'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import { isForeignKeyViolation } from '../db/errors.js'
import { columnKey, type Page, type PageRequest, paginate, parseSort } from '../db/paginate.js'
import { clientIdsMatching, fullTextQuery, queryWords } from '../db/search.js'
import type { ClientType, DB, LeadChannel, LeadStatus, Leads } from '../db/types.js'
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors/domain.js'
import { type EventType, writeEvent } from '../events/outbox.js'
import { type NewActivity, recordActivities } from '../timeline/record.js'
import type { LEAD_SORTS } from './schemas.js'
import { visibleLeads } from './scope.js'
import { assertTransition } from './transitions.js'

type LeadRow = Omit<Selectable<Leads>, 'search_vector' | 'deleted_at' | 'deleted_by'>

export interface Lead extends LeadRow {
  client: { id: number; contact_name: string; company_name: string | null; phone: string }
}

export const LEAD_COLUMNS = [
  'leads.id',
  'leads.client_id',
  'leads.channel',
  'leads.status',
  'leads.admin_notes',
  'leads.sales_notes',
  'leads.assigned_to',
  'leads.created_by',
  'leads.created_at',
  'leads.updated_at',
  'leads.status_changed_at',
] as const

/**
 * The lead columns and its client in short, joined in the same query (never one query a row).
 * `leads` may also be a CTE of that name holding the rows an insert or update returned.
 */
export function withClient<O>(query: SelectQueryBuilder<DB, 'leads', O>) {
  return query
    .innerJoin('clients', 'clients.id', 'leads.client_id')
    .select(LEAD_COLUMNS)
    .select((eb) =>
      jsonBuildObject({
        id: eb.ref('clients.id'),
        contact_name: eb.ref('clients.contact_name'),
        company_name: eb.ref('clients.company_name'),
        phone: eb.ref('clients.phone'),
      }).as('client'),
    )
}

export type AssigneeFilter = number | 'me' | 'none'

export interface LeadFilter {
  status?: LeadStatus[]
  channel?: LeadChannel[]
  client_id?: number
  assigned_to?: AssigneeFilter[]
  client_type?: ClientType
  created_from?: string
  created_to?: string
  updated_from?: string
  updated_to?: string
  status_changed_from?: string
  status_changed_to?: string
  has_activity_since?: string
  q?: string
}

/** The lead columns that the `${name}_from` and `${name}_to` filters bound. */
const LEAD_DATE_FILTERS = {
  created: 'leads.created_at',
  updated: 'leads.updated_at',
  status_changed: 'leads.status_changed_at',
} as const

export interface LeadListQuery extends LeadFilter, PageRequest {
  sort: (typeof LEAD_SORTS)[number] | `-${(typeof LEAD_SORTS)[number]}`
}

/** The `assigned_to` filter as user ids, and whether unassigned leads (`none`) are asked for; undefined when absent. */
export function parseAssignees(
  actor: AuthenticatedActor,
  values: LeadFilter['assigned_to'],
): { ids: number[]; unassigned: boolean } | undefined {
  if (!values?.length) return undefined
  const ids = values.flatMap((value) => (value === 'none' ? [] : [value === 'me' ? actor.userId : value]))
  return { ids: [...new Set(ids)], unassigned: values.includes('none') }
}

/** The scoped leads that match the filters of GET /leads and /leads/stats. */
export function filteredLeads(db: Database, actor: AuthenticatedActor, filter: LeadFilter) {
  let query = visibleLeads(db, actor)
  if (filter.status?.length) query = query.where('leads.status', 'in', filter.status)
  if (filter.channel?.length) query = query.where('leads.channel', 'in', filter.channel)
  if (filter.client_id !== undefined) query = query.where('leads.client_id', '=', filter.client_id)
  const assignees = parseAssignees(actor, filter.assigned_to)
  if (assignees) {
    const { ids, unassigned } = assignees
    query = query.where((eb) =>
      eb.or([
        ...(ids.length > 0 ? [eb('leads.assigned_to', 'in', ids)] : []),
        ...(unassigned ? [eb('leads.assigned_to', 'is', null)] : []),
      ]),
    )
  }
  if (filter.client_type) {
    const type = filter.client_type
    query = query.where('leads.client_id', 'in', (eb) =>
      eb.selectFrom('clients').select('clients.id').where('clients.client_type', '=', type),
    )
  }
  if (filter.has_activity_since) {
    const since = dateRange({ from: 'has_activity_since', to: '' }, { from: filter.has_activity_since }).from as Date
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom('lead_activities')
          .select('lead_activities.id')
          .whereRef('lead_activities.lead_id', '=', 'leads.id')
          .where('lead_activities.occurred_at', '>=', since),
      ),
    )
  }
  for (const [name, column] of Object.entries(LEAD_DATE_FILTERS)) {
    for (const condition of rangeConditions(column, name, filter as Record<string, unknown>)) {
      query = query.where(condition)
    }
  }
  if (filter.q) {
    // The client as /clients?q= finds it (substring, typo, phone digits); the notes by full text.
    const clientIds = clientIdsMatching(db, filter.q)
    const notes = fullTextQuery(queryWords(filter.q))
    query = query.where((eb) =>
      eb.or([eb('leads.client_id', 'in', clientIds), sql<SqlBool>`leads.search_vector @@ ${notes.matches}`]),
    )
  }
  return query
}

export async function listLeads(db: Database, actor: AuthenticatedActor, query: LeadListQuery): Promise<Page<Lead>> {
  const { limit: _limit, offset: _offset, cursor: _cursor, sort, ...filter } = query
  const { column, direction } = parseSort(sort)
  return paginate(db, {
    matching: filteredLeads(db, actor, filter),
    select: (matching) => withClient(matching),
    order: { keys: [columnKey(`leads.${column}`, 'timestamp')], id: 'leads.id', direction },
    page: query,
    filters: query,
  })
}

export async function getLead(db: Database, actor: AuthenticatedActor, id: number): Promise<Lead> {
  const lead = await withClient(visibleLeads(db, actor).where('leads.id', '=', id)).executeTakeFirst()
  if (!lead) throw new NotFoundError('Lead')
  return lead
}

export const CLIENT_LEADS_SHOWN = 20

/** The most recent leads of one client that the caller may see, and how many they may see in all. */
export async function leadsOfClient(
  db: Database,
  actor: AuthenticatedActor,
  clientId: number,
): Promise<{ leads: Lead[]; leads_total: number }> {
  const ofClient = visibleLeads(db, actor).where('leads.client_id', '=', clientId)
  const [leads, total] = await Promise.all([
    withClient(ofClient)
      .orderBy('leads.created_at', 'desc')
      .orderBy('leads.id', 'desc')
      .limit(CLIENT_LEADS_SHOWN)
      .execute(),
    ofClient.select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow(),
  ])
  return { leads, leads_total: Number(total.count) }
}

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

export async function assertActiveUser(trx: Transaction<DB>, userId: number): Promise<void> {
  const user = await trx
    .selectFrom('users')
    .select('id')
    .where('id', '=', userId)
    .where('is_active', '=', true)
    // Waits for a concurrent deactivation to commit, then sees it: no lead goes to an inactive user.
    .forShare()
    .executeTakeFirst()
  if (!user) throw ValidationError.field('assigned_to', `no active user has id ${userId}`)
}

/**
 * The lead's client must be live. FOR SHARE waits for a concurrent trash of the client to commit,
 * then sees it trashed: no live lead joins a trashed client.
 */
async function assertLiveClient(trx: Transaction<DB>, clientId: number): Promise<void> {
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

/** The client's most recent open lead (new, contacted or quoted), locked until the transaction ends. */
export async function latestOpenLead(trx: Transaction<DB>, clientId: number): Promise<Lead | undefined> {
  return withClient(trx.selectFrom('leads'))
    .where('leads.client_id', '=', clientId)
    .where('leads.deleted_at', 'is', null)
    .where('leads.status', 'in', OPEN_LEAD_STATUSES)
    .orderBy('leads.created_at', 'desc')
    .orderBy('leads.id', 'desc')
    .limit(1)
    .forUpdate('leads')
    .executeTakeFirst()
}

export interface NewLead {
  client_id: number
  channel: LeadChannel
  status?: LeadStatus
  admin_notes?: string | null
  sales_notes?: string | null
  assigned_to?: number | null
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
  if (assignedTo != null && assignedTo !== actor.userId) await assertActiveUser(trx, assignedTo)
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
              status: input.status ?? 'new',
              admin_notes: input.admin_notes ?? null,
              sales_notes: input.sales_notes ?? null,
              assigned_to: assignedTo ?? null,
              created_by: actor.userId,
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
function timelineEntry(leadId: number, field: 'status' | 'assigned_to', from: unknown, to: unknown): NewActivity {
  return { lead_id: leadId, type: field === 'status' ? 'status_change' : 'assignment', meta: { from, to } }
}

export interface LeadPatch {
  client_id?: number
  channel?: LeadChannel
  admin_notes?: string | null
  sales_notes?: string | null
}

/** One statement: the update, its audit row, and the lead joined to its client. */
export async function applyChange(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  eventType: EventType,
  current: LeadRow,
  changes: Changes<LeadRow>,
  options: { statusChanged?: boolean } = {},
): Promise<Lead> {
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
  const changes = diff(current, patch)
  if (!changes) return getLead(trx, actor, id)
  if (changes.set.client_id !== undefined) await assertLiveClient(trx, changes.set.client_id)
  return applyChange(trx, actor, 'lead.updated', current, changes)
}

export async function changeLeadStatus(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  id: number,
  status: LeadStatus,
): Promise<Lead> {
  const current = await lockVisibleLead(trx, actor, id)
  const changes = diff(current, { status })
  // Setting the current status again is a no-op: no audit row, no moved timestamps.
  if (!changes) return getLead(trx, actor, id)
  assertTransition(current.status, status, actor.role)
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
  if (assignedTo !== null) await assertActiveUser(trx, assignedTo)
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

export async function countLeadsOfClient(trx: Transaction<DB>, clientId: number): Promise<number> {
  const row = await trx
    .selectFrom('leads')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('client_id', '=', clientId)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow()
  return Number(row.count)
}

export async function leadIdsOfClient(trx: Transaction<DB>, clientId: number): Promise<number[]> {
  const rows = await trx
    .selectFrom('leads')
    .select('id')
    .where('client_id', '=', clientId)
    .where('deleted_at', 'is', null)
    .orderBy('id')
    .execute()
  return rows.map((row) => row.id)
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
