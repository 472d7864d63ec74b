import type { Database } from '../db/database.js'
import { readPage } from '../db/page.js'
import type { AuditAction } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'
import type { AuditedTable, AuditValues } from './write.js'

export interface AuditFilter {
  table_name?: AuditedTable
  record_id?: number
  user_id?: number
  action?: AuditAction
  from?: string
  to?: string
  limit: number
  offset: number
}

/** Audit rows, newest first. */
export async function listAuditLogs(db: Database, filter: AuditFilter) {
  let query = db.selectFrom('audit_logs')
  if (filter.table_name) query = query.where('table_name', '=', filter.table_name)
  if (filter.record_id !== undefined) query = query.where('record_id', '=', filter.record_id)
  if (filter.user_id !== undefined) query = query.where('user_id', '=', filter.user_id)
  if (filter.action) query = query.where('action', '=', filter.action)
  if (filter.from) query = query.where('created_at', '>=', timestamp('from', filter.from))
  if (filter.to) query = query.where('created_at', '<', timestamp('to', filter.to))
  const ordered = query
    .selectAll()
    .$narrowType<{ old_values: AuditValues | null; new_values: AuditValues | null }>()
    .orderBy('id', 'desc')
  return readPage(ordered, query, filter)
}

/** A date-time the format check let through but Date cannot read (a leap second) is a 400, not a 500. */
function timestamp(field: string, value: string): Date {
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) throw ValidationError.field(field, 'is not a real timestamp')
  return date
}
