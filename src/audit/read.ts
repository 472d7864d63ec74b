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
