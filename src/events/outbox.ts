import { EventEmitter } from 'node:events'
import type { Transaction } from 'kysely'
import { type Actor, eventActor } from '../auth/actor.js'
import type { DB } from '../db/types.js'

/** Emitted in this process after a request that may have committed events: its workers look at once. */
export const eventsWritten = new EventEmitter()

export const EVENT_TYPES = [
  'client.created',
  'client.updated',
  'client.deleted',
  'client.merged',
  'client.restored',
  'lead.created',
  'lead.updated',
  'lead.deleted',
  'lead.restored',
  'lead.status_changed',
  'lead.assigned',
  'lead.activity_added',
  'lead.stale',
  'user.created',
  'user.updated',
  'user.deleted',
  'task.created',
  'task.updated',
  'task.completed',
  'task.deleted',
  'task.due',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

/** The kinds of resource an event is about; `lead:42` keys the order of its deliveries. */
export type EventResource = 'client' | 'lead' | 'lead_activity' | 'user' | 'task'

export type EventValues = Record<string, unknown>

export interface EventEntry {
  type: EventType
  resource: EventResource
  id: number
  /** The changed fields before and after; null on the side that does not exist (create, delete). */
  old: EventValues | null
  new: EventValues | null
  /** The resource as GET returns it (for a delete: as it was). */
  object: unknown
}

// Ten parameters a row, well below PostgreSQL's 65,535 a statement.
const ROWS_PER_INSERT = 1000

/**
 * Writes the events of changes in the transaction that made them (the transactional outbox):
 * a rollback takes them away with the change, a commit keeps them for the workers to deliver.
 */
export async function writeEvent(
  trx: Transaction<DB>,
  actor: Actor,
  entries: EventEntry | EventEntry[],
): Promise<void> {
  const by = JSON.stringify(eventActor(actor))
  const rows = (Array.isArray(entries) ? entries : [entries]).map((entry) => ({
    type: entry.type,
    actor: by,
    resource_key: `${entry.resource}:${entry.id}`,
    data: JSON.stringify({ id: entry.id, old: entry.old, new: entry.new, object: entry.object }),
    request_id: actor.requestId,
  }))
  for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
    await trx
      .insertInto('events')
      .values(rows.slice(start, start + ROWS_PER_INSERT))
      .execute()
  }
}
