// Merging one client into another: leads moved, empty fields filled, the other trashed.
import { sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { DB } from '../db/types.js'
import { NotFoundError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { type ClientDependents, markTrashed } from './commands.js'
import { CLIENT_COLUMNS, type Client, liveClients } from './queries.js'

/** The fields a merge copies from the duplicate when the client kept has none. */
const MERGE_FILLED_FIELDS = ['company_name', 'email', 'address'] as const

export interface MergeOutcome {
  dry_run: boolean
  /** The client kept, as it is (or, for a dry run, would be) after the merge. */
  client: Client
  from_id: number
  /** The fields filled from the duplicate, with their new values. */
  filled: { [field in (typeof MERGE_FILLED_FIELDS)[number]]?: string }
  /** The leads that move to the client kept. */
  lead_ids: number[]
}

/**
 * Merges the duplicate `fromId` into client `id`: its live leads (and their activities, which hang
 * off them) move to `id`, `id`'s empty fields take the duplicate's values, and the duplicate goes
 * to the trash. One audit row (`merge`) for each lead and each client. `dryRun` answers the same
 * and writes nothing.
 */
export async function mergeClients(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  input: { from_id: number; dry_run?: boolean },
  dependents: ClientDependents,
): Promise<MergeOutcome> {
  const fromId = input.from_id
  if (fromId === id) throw ValidationError.field('from_id', 'must name another client than the one kept')
  // Both rows locked in id order, so that two merges of the same pair cannot deadlock.
  const rows = await liveClients(trx)
    .select(CLIENT_COLUMNS)
    .where('clients.id', 'in', [id, fromId])
    .orderBy('clients.id')
    .forUpdate()
    .execute()
  const target = rows.find((row) => row.id === id)
  const source = rows.find((row) => row.id === fromId)
  if (!target) throw new NotFoundError('Client')
  if (!source) throw ValidationError.field('from_id', `no client with id ${fromId} (or it is in the trash)`)
  const fill: MergeOutcome['filled'] = {}
  for (const field of MERGE_FILLED_FIELDS) {
    const value = source[field]
    if (target[field] === null && value !== null) fill[field] = value
  }
  const changes = diff<Client>(target, fill)
  const leadIds = await dependents.ids(trx, fromId)
  const outcome = { from_id: fromId, filled: fill, lead_ids: leadIds }
  if (input.dry_run) return { dry_run: true, client: { ...target, ...changes?.set }, ...outcome }

  await dependents.moveAll(trx, actor, fromId, id)
  await markTrashed(trx, actor, fromId)
  const merged = changes
    ? await trx
        .updateTable('clients')
        .set({ ...changes.set, updated_at: sql`now()` })
        .where('id', '=', id)
        .returning(CLIENT_COLUMNS)
        .executeTakeFirstOrThrow()
    : target
  await writeAudit(trx, actor, [
    {
      table: 'clients',
      recordId: id,
      action: 'merge',
      oldValues: changes?.oldValues ?? {},
      newValues: { ...changes?.newValues, merged_from: fromId, lead_ids: leadIds },
    },
    { table: 'clients', recordId: fromId, action: 'merge', oldValues: source, newValues: { merged_into: id } },
  ])
  await writeEvent(trx, actor, [
    {
      type: 'client.merged',
      resource: 'client',
      id,
      old: changes?.oldValues ?? {},
      new: { ...changes?.newValues, merged_from: fromId, lead_ids: leadIds },
      object: merged,
    },
    { type: 'client.deleted', resource: 'client', id: fromId, old: source, new: null, object: source },
  ])
  return { dry_run: false, client: merged, ...outcome }
}
