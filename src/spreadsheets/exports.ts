import { sql } from 'kysely'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { CLIENT_COLUMNS, type Client, type ClientFilter, filteredClients } from '../clients/queries.js'
import type { CLIENT_SORTS } from '../clients/schemas.js'
import type { Database } from '../db/database.js'
import { parseSort } from '../db/paginate.js'
import { filteredLeads, LEAD_COLUMNS, type LeadFilter } from '../leads/queries.js'
import type { LEAD_SORTS } from '../leads/schemas.js'
import { batchAfter, type KeysetPosition, keysetBatches, sortKey } from './keyset.js'
import type { ExportColumn } from './writer.js'

type Sort<F extends readonly string[]> = F[number] | `-${F[number]}`

export type ClientExportRow = Client & KeysetPosition

export const CLIENT_EXPORT_COLUMNS: ExportColumn<ClientExportRow>[] = [
  { header: 'id', value: (row) => row.id, width: 10 },
  { header: 'client_type', value: (row) => row.client_type, width: 12 },
  { header: 'contact_name', value: (row) => row.contact_name, width: 28 },
  { header: 'company_name', value: (row) => row.company_name, width: 28 },
  { header: 'phone', value: (row) => row.phone, width: 18 },
  { header: 'email', value: (row) => row.email, width: 28 },
  { header: 'address', value: (row) => row.address, width: 36 },
  { header: 'created_by', value: (row) => row.created_by, width: 10 },
  { header: 'created_at', value: (row) => row.created_at, width: 20 },
  { header: 'updated_at', value: (row) => row.updated_at, width: 20 },
]

/** The clients of GET /clients with the same filters and sort, batch after batch. */
export function clientExportBatches(
  db: Database,
  actor: AuthenticatedActor,
  filter: ClientFilter & { sort: Sort<typeof CLIENT_SORTS> },
): AsyncGenerator<ClientExportRow[]> {
  const { column, direction } = parseSort(filter.sort)
  const sortColumn = `clients.${column}`
  const order = { column: sortColumn, id: 'clients.id', direction }
  return keysetBatches((after, limit) => {
    const rows = filteredClients(db, actor, filter).select(CLIENT_COLUMNS).select(sortKey(sortColumn).as('sort_key'))
    return batchAfter(db, rows, order, after, limit)
  })
}

export interface LeadExportRow extends KeysetPosition {
  id: number
  status: string
  channel: string
  client_id: number
  client_name: string
  client_company: string | null
  client_phone: string
  assigned_to: number | null
  assignee_username: string | null
  admin_notes: string | null
  sales_notes: string | null
  created_by: number | null
  created_at: Date
  updated_at: Date
  status_changed_at: Date
  amount: string | null
  currency: string
  expected_close_date: string | null
  lost_reason: string | null
}

export const LEAD_EXPORT_COLUMNS: ExportColumn<LeadExportRow>[] = [
  { header: 'id', value: (row) => row.id, width: 10 },
  { header: 'status', value: (row) => row.status, width: 12 },
  { header: 'channel', value: (row) => row.channel, width: 12 },
  { header: 'client_id', value: (row) => row.client_id, width: 10 },
  { header: 'client_name', value: (row) => row.client_name, width: 28 },
  { header: 'client_company', value: (row) => row.client_company, width: 28 },
  { header: 'client_phone', value: (row) => row.client_phone, width: 18 },
  { header: 'assigned_to', value: (row) => row.assigned_to, width: 10 },
  { header: 'assignee_username', value: (row) => row.assignee_username, width: 18 },
  { header: 'admin_notes', value: (row) => row.admin_notes, width: 40 },
  { header: 'sales_notes', value: (row) => row.sales_notes, width: 40 },
  { header: 'created_by', value: (row) => row.created_by, width: 10 },
  { header: 'created_at', value: (row) => row.created_at, width: 20 },
  { header: 'updated_at', value: (row) => row.updated_at, width: 20 },
  { header: 'status_changed_at', value: (row) => row.status_changed_at, width: 20 },
  // The decimal text as stored ("1500.00"): a spreadsheet number is a float.
  { header: 'amount', value: (row) => row.amount, width: 16 },
  { header: 'currency', value: (row) => row.currency, width: 8 },
  { header: 'expected_close_date', value: (row) => row.expected_close_date, width: 12 },
  { header: 'lost_reason', value: (row) => row.lost_reason, width: 24 },
]

/** The leads of GET /leads that the caller may see, with the same filters and sort, batch after batch. */
export function leadExportBatches(
  db: Database,
  actor: AuthenticatedActor,
  filter: LeadFilter & { sort: Sort<typeof LEAD_SORTS> },
): AsyncGenerator<LeadExportRow[]> {
  const { column, direction } = parseSort(filter.sort)
  // Leads without an open task (an amount, a close date) last either way: an infinite bound is a
  // value the keyset can pass.
  const infinity = sql.lit(direction === 'asc' ? 'infinity' : '-infinity')
  const sortColumn =
    column === 'next_task_at'
      ? sql`coalesce(leads.next_task_at, ${infinity}::timestamptz)`
      : column === 'amount'
        ? sql`coalesce(leads.amount, ${infinity}::numeric)`
        : column === 'expected_close_date'
          ? sql`coalesce(leads.expected_close_date, ${infinity}::date)`
          : `leads.${column}`
  const order = { column: sortColumn, id: 'leads.id', direction }
  return keysetBatches((after, limit) => {
    const rows = filteredLeads(db, actor, filter)
      .innerJoin('clients', 'clients.id', 'leads.client_id')
      .leftJoin('users', 'users.id', 'leads.assigned_to')
      .select(LEAD_COLUMNS)
      .select([
        'clients.contact_name as client_name',
        'clients.company_name as client_company',
        'clients.phone as client_phone',
        'users.username as assignee_username',
        sortKey(sortColumn).as('sort_key'),
      ])
    return batchAfter(db, rows, order, after, limit)
  })
}
