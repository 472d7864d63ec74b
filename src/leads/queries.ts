// Reading leads: the columns, the filters of the lists, exports and stats, one lead, a client's leads.
import { type RawBuilder, type Selectable, type SelectQueryBuilder, type SqlBool, sql, type Transaction } from 'kysely'
import { jsonBuildObject } from 'kysely/helpers/postgres'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { visibleLeads } from '../auth/scope.js'
import type { Database } from '../db/database.js'
import { dateRange, rangeConditions } from '../db/dates.js'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import { columnKey, type Page, type PageRequest, paginate, parseSort, type SortKey } from '../db/paginate.js'
import { clientIdsMatching, fullTextQuery, queryWords } from '../db/search.js'
import type { ClientType, DB, LeadChannel, LeadStatus, Leads } from '../db/types.js'
import { NotFoundError, ValidationError } from '../errors/domain.js'
import { isCurrency } from '../money.js'
import { CLIENT_LEADS_SHOWN, type LEAD_SORTS } from './schemas.js'

export type LeadRow = Omit<Selectable<Leads>, 'search_vector' | 'deleted_at' | 'deleted_by' | 'stale_published_for'>

export interface Lead extends LeadRow {
  stale: boolean
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
  'leads.first_response_at',
  'leads.response_seconds',
  'leads.response_business_seconds',
  'leads.next_task_at',
  'leads.last_activity_at',
  'leads.amount',
  'leads.currency',
  'leads.expected_close_date',
  'leads.lost_reason',
] as const

/** When the lead's stay in its status began: its status change or its last activity, whichever is later. */
export const STAY_START = sql<Date>`greatest(leads.status_changed_at, leads.last_activity_at)`

/** An open lead that no one has answered yet (see pipeline/first-response.ts). */
const AWAITING_FIRST_RESPONSE = sql<SqlBool>`(leads.status in (${sql.join(OPEN_LEAD_STATUSES.map((status) => sql.lit(status)))}) and leads.first_response_at is null)`

/**
 * The lead has sat in its open status longer than stale_after of that status (the pipeline
 * settings): one term a status, each read from leads_stay_idx. Null, not false, for a status
 * whose stale_after is null: a WHERE drops it either way, and the bare OR keeps the index usable.
 */
export const STALE_TERMS = sql<SqlBool>`(${sql.join(
  OPEN_LEAD_STATUSES.map(
    (status) =>
      sql`(leads.status = ${sql.lit(status)} and ${STAY_START} < now() - (select (pipeline_settings.stale_after ->> ${sql.lit(status)})::interval from pipeline_settings))`,
  ),
  sql` or `,
)})`

/** True when the lead is stale (STALE_TERMS), false otherwise. */
export const IS_STALE = sql<boolean>`coalesce(${STALE_TERMS}, false)`

/**
 * The lead columns and its client in short, joined in the same query (never one query a row).
 * `leads` may also be a CTE of that name holding the rows an insert or update returned.
 */
export function withClient<O>(query: SelectQueryBuilder<DB, 'leads', O>) {
  return query
    .innerJoin('clients', 'clients.id', 'leads.client_id')
    .select(LEAD_COLUMNS)
    .select(IS_STALE.as('stale'))
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
  has_open_task?: boolean
  next_task_from?: string
  next_task_to?: string
  stale?: boolean
  awaiting_first_response?: boolean
  amount_min?: string
  amount_max?: string
  currency?: string[]
  expected_close_from?: string
  expected_close_to?: string
}

/** The lead columns that the `${name}_from` and `${name}_to` filters bound. */
const LEAD_DATE_FILTERS = {
  created: 'leads.created_at',
  updated: 'leads.updated_at',
  status_changed: 'leads.status_changed_at',
  next_task: 'leads.next_task_at',
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
  if (filter.has_open_task !== undefined) {
    query = query.where('leads.next_task_at', filter.has_open_task ? 'is not' : 'is', null)
  }
  if (filter.stale !== undefined) {
    query = query.where(filter.stale ? STALE_TERMS : sql<SqlBool>`not ${IS_STALE}`)
  }
  if (filter.awaiting_first_response !== undefined) {
    query = query.where(
      filter.awaiting_first_response ? AWAITING_FIRST_RESPONSE : sql<SqlBool>`not ${AWAITING_FIRST_RESPONSE}`,
    )
  }
  if (filter.amount_min !== undefined) query = query.where('leads.amount', '>=', filter.amount_min)
  if (filter.amount_max !== undefined) query = query.where('leads.amount', '<=', filter.amount_max)
  if (filter.currency?.length) {
    const unknown = filter.currency.find((code) => !isCurrency(code))
    if (unknown) throw ValidationError.field('currency', `${unknown} is not an ISO 4217 currency code`)
    query = query.where('leads.currency', 'in', filter.currency)
  }
  if (filter.expected_close_from !== undefined) {
    query = query.where('leads.expected_close_date', '>=', filter.expected_close_from)
  }
  if (filter.expected_close_to !== undefined) {
    query = query.where('leads.expected_close_date', '<=', filter.expected_close_to)
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
  const keys =
    column === 'next_task_at'
      ? nextTaskKeys(direction)
      : column === 'amount'
        ? nullsLastKeys(sql`coalesce(leads.amount, 0)`, sql`leads.amount`, 'numeric', direction)
        : column === 'expected_close_date'
          ? nullsLastKeys(
              sql`coalesce(leads.expected_close_date, 'epoch'::date)`,
              sql`leads.expected_close_date`,
              'date',
              direction,
            )
          : [columnKey(`leads.${column}`, 'timestamp')]
  return paginate(db, {
    matching: filteredLeads(db, actor, filter),
    select: (matching) => withClient(matching),
    order: { keys, id: 'leads.id', direction },
    page: query,
    filters: query,
  })
}

/**
 * next_task_at with the leads without an open task last in either direction: the first key puts
 * them after the others. Each direction's keys are the expressions of an index of their own
 * (leads_next_task_idx, leads_next_task_desc_idx), read in the keys' order.
 */
function nextTaskKeys(direction: 'asc' | 'desc'): SortKey[] {
  const last = direction === 'asc' ? sql`(leads.next_task_at is null)::int` : sql`(leads.next_task_at is not null)::int`
  return [
    { expression: last, type: 'integer' },
    { expression: sql`coalesce(leads.next_task_at, 'epoch'::timestamptz)`, type: 'timestamp' },
  ]
}

/**
 * A nullable column with the leads without a value last in either direction, as next_task_at:
 * the keys are the expressions of the column's two indexes (db/migrations/20261207173000_lead_value.sql).
 */
function nullsLastKeys(
  filled: RawBuilder<unknown>,
  column: RawBuilder<unknown>,
  type: 'numeric' | 'date',
  direction: 'asc' | 'desc',
): SortKey[] {
  const last = direction === 'asc' ? sql`(${column} is null)::int` : sql`(${column} is not null)::int`
  return [
    { expression: last, type: 'integer' },
    { expression: filled, type },
  ]
}

export async function getLead(db: Database, actor: AuthenticatedActor, id: number): Promise<Lead> {
  const lead = await withClient(visibleLeads(db, actor).where('leads.id', '=', id)).executeTakeFirst()
  if (!lead) throw new NotFoundError('Lead')
  return lead
}

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
