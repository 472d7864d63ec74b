import type { Transaction } from 'kysely'
import type { Actor } from '../auth/actor.js'
import type { AuditAction, AuditedTable, DB } from '../db/types.js'

export type { AuditedTable }
export type AuditValues = Record<string, unknown>

export interface AuditEntry {
  table: AuditedTable
  recordId: number
  action: AuditAction
  oldValues: AuditValues | null
  newValues: AuditValues | null
}

/** Writes the audit row of a change, in the transaction that made the change. */
export async function writeAudit(trx: Transaction<DB>, actor: Actor, entry: AuditEntry): Promise<void> {
  await trx
    .insertInto('audit_logs')
    .values({
      table_name: entry.table,
      record_id: entry.recordId,
      action: entry.action,
      old_values: entry.oldValues === null ? null : JSON.stringify(entry.oldValues),
      new_values: entry.newValues === null ? null : JSON.stringify(entry.newValues),
      user_id: actor.userId,
      username: actor.username,
      request_id: actor.requestId,
    })
    .execute()
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
