import { type Selectable, type SelectQueryBuilder, sql, type Transaction } from 'kysely'
import { jsonBuildObject } from 'kysely/helpers/postgres'
import { type Changes, diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { LEAD_CHANNELS, LEAD_STATUSES } from '../db/enums.js'
import { isForeignKeyViolation } from '../db/errors.js'
import { type PageOf, readPage } from '../db/page.js'
import { clientSearchTerms, normalizedContains } from '../db/search.js'
import type { DB, LeadChannel, LeadStatus, Leads } from '../db/types.js'
import { ForbiddenError, NotFoundError, ValidationError } from '../errors/domain.js'
import { createdRange } from '../http/dates.js'
import { parseSort } from '../http/schemas.js'
import { type LEAD_SORTS, MAX_STATS_DAYS } from './schemas.js'
import { visibleLeads } from './scope.js'
import { assertTransition } from './transitions.js'

type LeadRow = Omit<Selectable<Leads>, 'notes_search'>

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

/** The lead columns and its client in short, joined in the same query (never one query a row). */
function withClient<O>(query: SelectQueryBuilder<DB, 'leads', O>) {
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

export interface LeadFilter {
  status?: LeadStatus[]
  channel?: LeadChannel[]
  client_id?: number
  assigned_to?: number | 'me' | 'none'
  created_from?: string
  created_to?: string
  q?: string
}

export interface LeadListQuery extends LeadFilter {
  limit: number
  offset: number
  sort: (typeof LEAD_SORTS)[number] | `-${(typeof LEAD_SORTS)[number]}`
}

/** The scoped leads that match the filters of GET /leads and /leads/stats. */
export function filteredLeads(db: Database, actor: AuthenticatedActor, filter: LeadFilter) {
  let query = visibleLeads(db, actor)
  if (filter.status?.length) query = query.where('leads.status', 'in', filter.status)
  if (filter.channel?.length) query = query.where('leads.channel', 'in', filter.channel)
  if (filter.client_id !== undefined) query = query.where('leads.client_id', '=', filter.client_id)
  if (filter.assigned_to === 'none') query = query.where('leads.assigned_to', 'is', null)
  else if (filter.assigned_to === 'me') query = query.where('leads.assigned_to', '=', actor.userId)
  else if (filter.assigned_to !== undefined) query = query.where('leads.assigned_to', '=', filter.assigned_to)
  const range = createdRange(
    { from: 'created_from', to: 'created_to' },
    { from: filter.created_from, to: filter.created_to },
  )
  if (range.from) query = query.where('leads.created_at', '>=', range.from)
  if (range.before) query = query.where('leads.created_at', '<', range.before)
  if (filter.q) {
    const q = filter.q
    const clientMatches = clientSearchTerms(q).matches
    query = query.where((eb) =>
      eb.or([
        eb('leads.client_id', 'in', eb.selectFrom('clients').select('clients.id').where(clientMatches)),
        eb('leads.notes_search', 'like', normalizedContains(q)),
      ]),
    )
  }
  return query
}

export async function listLeads(db: Database, actor: AuthenticatedActor, query: LeadListQuery): Promise<PageOf<Lead>> {
  const matching = filteredLeads(db, actor, query)
  const { column, direction } = parseSort(query.sort)
  return readPage(
    withClient(matching).orderBy(`leads.${column}`, direction).orderBy('leads.id', direction),
    matching,
    query,
  )
}

export async function getLead(db: Database, actor: AuthenticatedActor, id: number): Promise<Lead> {
  const lead = await withClient(visibleLeads(db, actor).where('leads.id', '=', id)).executeTakeFirst()
  if (!lead) throw new NotFoundError('Lead')
  return lead
}

/** The leads of one client that the caller may see, newest first. */
export function leadsOfClient(db: Database, actor: AuthenticatedActor, clientId: number): Promise<Lead[]> {
  return withClient(visibleLeads(db, actor).where('leads.client_id', '=', clientId))
    .orderBy('leads.created_at', 'desc')
    .orderBy('leads.id', 'desc')
    .execute()
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

async function assertClientExists(trx: Transaction<DB>, clientId: number): Promise<void> {
  const client = await trx.selectFrom('clients').select('id').where('id', '=', clientId).executeTakeFirst()
  if (!client) throw ValidationError.field('client_id', `no client has id ${clientId}`)
}

async function assertActiveUser(trx: Transaction<DB>, userId: number): Promise<void> {
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

/** A client or an assignee deleted by a concurrent request after our check. */
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
}

export async function createLead(trx: Transaction<DB>, actor: AuthenticatedActor, input: NewLead): Promise<Lead> {
  let assignedTo = input.assigned_to
  if (actor.role === 'sales') {
    if (assignedTo !== undefined && assignedTo !== actor.userId) {
      throw new ForbiddenError('Sales users create leads assigned to themselves only')
    }
    if (input.admin_notes !== undefined) throw new ForbiddenError('admin_notes is read-only for sales users')
    assignedTo = actor.userId
  }
  await assertClientExists(trx, input.client_id)
  if (assignedTo != null) await assertActiveUser(trx, assignedTo)
  const created = await translateForeignKeys(() =>
    trx
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
      .returning(LEAD_COLUMNS)
      .executeTakeFirstOrThrow(),
  )
  await writeAudit(trx, actor, {
    table: 'leads',
    recordId: created.id,
    action: 'create',
    oldValues: null,
    newValues: created,
  })
  return getLead(trx, actor, created.id)
}

export interface LeadPatch {
  client_id?: number
  channel?: LeadChannel
  admin_notes?: string | null
  sales_notes?: string | null
}

export async function applyChange(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  current: LeadRow,
  changes: Changes<LeadRow>,
  options: { statusChanged?: boolean } = {},
): Promise<Lead> {
  await translateForeignKeys(() =>
    trx
      .updateTable('leads')
      .set({
        ...changes.set,
        ...(options.statusChanged && { status_changed_at: sql<Date>`now()` }),
        updated_at: sql`now()`,
      })
      .where('id', '=', current.id)
      .execute(),
  )
  await writeAudit(trx, actor, {
    table: 'leads',
    recordId: current.id,
    action: 'update',
    oldValues: changes.oldValues,
    newValues: changes.newValues,
  })
  return getLead(trx, actor, current.id)
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
  if (changes.set.client_id !== undefined) await assertClientExists(trx, changes.set.client_id)
  return applyChange(trx, actor, current, changes)
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
  return applyChange(trx, actor, current, changes, { statusChanged: true })
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
  return applyChange(trx, actor, current, changes)
}

export async function deleteLead(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<void> {
  const current = await lockVisibleLead(trx, actor, id)
  await trx.deleteFrom('leads').where('id', '=', id).execute()
  await writeAudit(trx, actor, { table: 'leads', recordId: id, action: 'delete', oldValues: current, newValues: null })
}

/** Deletes every lead of a client, one audit row each (a client deleted with cascade). */
export async function deleteLeadsOfClient(trx: Transaction<DB>, actor: Actor, clientId: number): Promise<number> {
  const deleted = await trx.deleteFrom('leads').where('client_id', '=', clientId).returning(LEAD_COLUMNS).execute()
  await writeAudit(
    trx,
    actor,
    deleted.map((lead) => ({ table: 'leads', recordId: lead.id, action: 'delete', oldValues: lead, newValues: null })),
  )
  return deleted.length
}

export async function countLeadsOfClient(trx: Transaction<DB>, clientId: number): Promise<number> {
  const row = await trx
    .selectFrom('leads')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('client_id', '=', clientId)
    .executeTakeFirstOrThrow()
  return Number(row.count)
}

/** Unassigns every lead of a user about to be deleted, one audit row each. */
export async function unassignLeadsOf(trx: Transaction<DB>, actor: Actor, userId: number): Promise<void> {
  const unassigned = await trx
    .updateTable('leads')
    .set({ assigned_to: null, updated_at: sql`now()` })
    .where('assigned_to', '=', userId)
    .returning('id')
    .execute()
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
}

export interface LeadStats {
  total: number
  by_status: Record<LeadStatus, number>
  by_channel: Record<LeadChannel, number>
  by_assignee: Array<{ user_id: number | null; username: string | null; total: number; closed: number }>
  conversion_rate: number
  per_day: Array<{ date: string; created: number; closed: number }>
}

/** Counts by status, channel and assignee in one grouped scan, and a day-by-day series. */
export async function leadStats(db: Database, actor: AuthenticatedActor, filter: LeadFilter): Promise<LeadStats> {
  const matching = filteredLeads(db, actor, filter)
  const groups = await db
    .with('matching', () => matching.select(['leads.status', 'leads.channel', 'leads.assigned_to']))
    .selectFrom('matching')
    .select((eb) => [
      'matching.status',
      'matching.channel',
      'matching.assigned_to',
      sql<number>`grouping(matching.status, matching.channel, matching.assigned_to)`.as('grouping'),
      eb.fn.countAll<number>().as('total'),
      sql<number>`count(*) filter (where matching.status = 'closed')`.as('closed'),
    ])
    .groupBy(sql`grouping sets ((matching.status), (matching.channel), (matching.assigned_to))`)
    .execute()

  const byStatus = Object.fromEntries(LEAD_STATUSES.map((status) => [status, 0])) as Record<LeadStatus, number>
  const byChannel = Object.fromEntries(LEAD_CHANNELS.map((channel) => [channel, 0])) as Record<LeadChannel, number>
  const byAssignee = new Map<number | null, { total: number; closed: number }>()
  // grouping() has one bit per column, set when the row does not group by it: 3 = by status, 5 = by channel, 6 = by assignee.
  for (const row of groups) {
    const grouping = Number(row.grouping)
    if (grouping === 3) byStatus[row.status] = Number(row.total)
    else if (grouping === 5) byChannel[row.channel] = Number(row.total)
    else if (grouping === 6) byAssignee.set(row.assigned_to, { total: Number(row.total), closed: Number(row.closed) })
  }
  const total = Object.values(byStatus).reduce((sum, count) => sum + count, 0)

  const assigneeIds = [...byAssignee.keys()].filter((id): id is number => id !== null)
  const usernames = new Map(
    assigneeIds.length === 0
      ? []
      : (await db.selectFrom('users').select(['id', 'username']).where('id', 'in', assigneeIds).execute()).map(
          (user) => [user.id, user.username] as const,
        ),
  )
  const by_assignee = [...byAssignee]
    .map(([userId, counts]) => ({
      user_id: userId,
      username: userId === null ? null : (usernames.get(userId) ?? null),
      ...counts,
    }))
    .sort((a, b) => b.total - a.total || (a.user_id ?? 0) - (b.user_id ?? 0))

  return {
    total,
    by_status: byStatus,
    by_channel: byChannel,
    by_assignee,
    conversion_rate: total === 0 ? 0 : byStatus.closed / total,
    per_day: await perDay(db, matching, filter),
  }
}

const DAY_MS = 86_400_000

/**
 * Leads created and leads closed on each UTC day, every day of the range present: the range is
 * created_from..created_to when given, otherwise the first lead's day to today.
 */
async function perDay(
  db: Database,
  matching: ReturnType<typeof filteredLeads>,
  filter: LeadFilter,
): Promise<LeadStats['per_day']> {
  const range = createdRange(
    { from: 'created_from', to: 'created_to' },
    { from: filter.created_from, to: filter.created_to },
  )
  // One entry per day: a range of centuries would be millions of rows in one answer.
  const now = Date.now()
  if ((range.before?.getTime() ?? now) - (range.from?.getTime() ?? now) > MAX_STATS_DAYS * DAY_MS) {
    throw ValidationError.field(
      range.from ? 'created_from' : 'created_to',
      `the stats cover at most ${MAX_STATS_DAYS} days; narrow created_from..created_to`,
    )
  }
  const utcDay = (column: string) => sql<string>`(${sql.ref(column)} at time zone 'UTC')::date`
  const result = await sql<{ date: string; created: number; closed: number }>`
    with matching as (${matching.select(['leads.created_at', 'leads.status', 'leads.status_changed_at'])}),
    bounds as (
      select coalesce(${range.from ?? null}::timestamptz, min(created_at)) as first,
             coalesce(${range.before ?? null}::timestamptz - interval '1 microsecond', now()) as last
      from matching
    ),
    days as (
      select generate_series((first at time zone 'UTC')::date, (last at time zone 'UTC')::date, interval '1 day')::date as day
      from bounds where first is not null
    ),
    created as (select ${utcDay('created_at')} as day, count(*) as n from matching group by 1),
    closed as (
      select ${utcDay('status_changed_at')} as day, count(*) as n from matching where status = 'closed' group by 1
    )
    select to_char(days.day, 'YYYY-MM-DD') as date, coalesce(created.n, 0) as created, coalesce(closed.n, 0) as closed
    from days
    left join created on created.day = days.day
    left join closed on closed.day = days.day
    order by days.day`.execute(db)
  return result.rows.map((row) => ({ date: row.date, created: Number(row.created), closed: Number(row.closed) }))
}
