import type { Database } from '../db/database.js'
import { type Page, type PageRequest, paginate } from '../db/paginate.js'
import type { AuditAction } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'
import type { AuditedTable, AuditValues } from './write.js'

export interface AuditFilter extends PageRequest {
  table_name?: AuditedTable
  record_id?: number
  user_id?: number
  action?: AuditAction
  from?: string
  to?: string
}

export interface AuditLogRow {
  id: number
  table_name: AuditedTable
  record_id: number
  action: AuditAction
  old_values: AuditValues | null
  new_values: AuditValues | null
  user_id: number | null
  username: string | null
  api_key_id: number | null
  api_key_name: string | null
  request_id: string | null
  import_id: number | null
  created_at: Date
}

/** Audit rows, newest first. */
export async function listAuditLogs(db: Database, filter: AuditFilter): Promise<Page<AuditLogRow>> {
  let query = db.selectFrom('audit_logs')
  if (filter.table_name) query = query.where('table_name', '=', filter.table_name)
  if (filter.record_id !== undefined) query = query.where('record_id', '=', filter.record_id)
  if (filter.user_id !== undefined) query = query.where('user_id', '=', filter.user_id)
  if (filter.action) query = query.where('action', '=', filter.action)
  if (filter.from) query = query.where('created_at', '>=', timestamp('from', filter.from))
  if (filter.to) query = query.where('created_at', '<', timestamp('to', filter.to))
  return paginate(db, {
    matching: query,
    select: (matching) => matching.selectAll().$castTo<AuditLogRow>(),
    order: { keys: [], id: 'audit_logs.id', direction: 'desc' },
    page: filter,
    filters: filter,
  })
}

/** A date-time the format check let through but Date cannot read (a leap second) is a 400, not a 500. */
function timestamp(field: string, value: string): Date {
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) throw ValidationError.field(field, 'is not a real timestamp')
  return date
}

/** The lead ids an audit value lists (a merge's `lead_ids`), or none. */
function listedLeadIds(values: AuditValues | null): number[] {
  const ids = values?.lead_ids
  return Array.isArray(ids) ? (ids as number[]) : []
}

/**
 * The rows with their lists of lead ids cut to the leads the caller may see: a client's history is
 * open to every user, but a sales user is not to learn which leads of other sellers a merge moved.
 */
export async function withVisibleLeadIds(
  page: Page<AuditLogRow>,
  visible: (ids: number[]) => Promise<Set<number>>,
): Promise<Page<AuditLogRow>> {
  const listed = page.items.flatMap((row) => [...listedLeadIds(row.old_values), ...listedLeadIds(row.new_values)])
  if (listed.length === 0) return page
  const seen = await visible([...new Set(listed)])
  const cut = (values: AuditValues | null) =>
    values && Array.isArray(values.lead_ids)
      ? { ...values, lead_ids: listedLeadIds(values).filter((id) => seen.has(id)) }
      : values
  return {
    ...page,
    items: page.items.map((row) => ({ ...row, old_values: cut(row.old_values), new_values: cut(row.new_values) })),
  }
}
