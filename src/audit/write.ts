import type { Transaction } from 'kysely'
import type { Actor } from '../auth/actor.js'
import type { AuditAction, AuditedTable, DB } from '../db/types.js'

export type { AuditedTable }
export type AuditValues = Record<string, unknown>

interface AuditEntry {
  table: AuditedTable
  /** null for an export, which concerns no single record. */
  recordId: number | null
  action: AuditAction
  oldValues: AuditValues | null
  newValues: AuditValues | null
}

// Ten parameters a row: 1,000 rows stay far below PostgreSQL's 65,535 parameters a statement.
const ROWS_PER_INSERT = 1000

/** The rows of `audit_logs` that record changes made by `actor`. */
export function auditRows(actor: Actor, entries: AuditEntry | AuditEntry[]) {
  return (Array.isArray(entries) ? entries : [entries]).map((entry) => ({
    table_name: entry.table,
    record_id: entry.recordId,
    action: entry.action,
    old_values: entry.oldValues === null ? null : JSON.stringify(entry.oldValues),
    new_values: entry.newValues === null ? null : JSON.stringify(entry.newValues),
    user_id: actor.userId,
    username: actor.username,
    api_key_id: actor.via?.type === 'api_key' ? actor.via.id : null,
    api_key_name: actor.via?.type === 'api_key' ? actor.via.name : null,
    request_id: actor.requestId,
    import_id: actor.importId ?? null,
  }))
}

/**
 * Writes the audit rows of changes, in the transaction that made them. (A single-row update may
 * instead insert `auditRows` in a CTE of its own statement, saving a round trip.)
 */
export async function writeAudit(
  trx: Transaction<DB>,
  actor: Actor,
  entries: AuditEntry | AuditEntry[],
): Promise<void> {
  const rows = auditRows(actor, entries)
  for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
    await trx
      .insertInto('audit_logs')
      .values(rows.slice(start, start + ROWS_PER_INSERT))
      .execute()
  }
}

export interface Changes<T> {
  /** Only the fields whose value changes. */
  set: Partial<T>
  oldValues: AuditValues
  newValues: AuditValues
}

/** Compares a patch with the current row; an empty result means the update changes nothing. */
export function diff<T extends object>(current: T, patch: Partial<T>): Changes<T> | null {
  const set: Partial<T> = {}
  const oldValues: AuditValues = {}
  const newValues: AuditValues = {}
  for (const key of Object.keys(patch) as Array<keyof T & string>) {
    const next = patch[key]
    if (next === undefined || sameValue(current[key], next)) continue
    set[key] = next
    oldValues[key] = current[key]
    newValues[key] = next
  }
  return Object.keys(set).length === 0 ? null : { set, oldValues, newValues }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  return a === b
}
