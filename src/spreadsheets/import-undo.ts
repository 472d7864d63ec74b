import { setImmediate as nextTurn } from 'node:timers/promises'
import { type NotNull, type Selectable, sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import { applyClientChanges, lockClient } from '../clients/commands.js'
import { CLIENT_COLUMNS, type Client } from '../clients/queries.js'
import type { Database } from '../db/database.js'
import type { AuditLogs, DB } from '../db/types.js'
import { ConflictError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { applyLeadChanges } from '../leads/commands.js'
import { LEAD_COLUMNS, type LeadRow, withClient } from '../leads/queries.js'

/** An unfinished import whose batches stopped this long ago belongs to a process that stopped: it is undone. */
export const ABANDONED_AFTER_SECONDS = 300
/** Audit rows undone by one transaction: as short as a batch written. */
const CHANGES_PER_UNDO = 250

type Change = Pick<Selectable<AuditLogs>, 'id' | 'table_name' | 'action' | 'old_values' | 'new_values'> & {
  record_id: number
}

/** Records that an import starts writing; its audit rows will name the id returned. */
export async function beginImport(db: Database, actor: Actor, kind: 'clients' | 'leads'): Promise<number> {
  const { id } = await db
    .insertInto('imports')
    .values({ kind, user_id: actor.userId })
    .returning('id')
    .executeTakeFirstOrThrow()
  return id
}

/**
 * Called first in each batch's transaction: the import is still being written (nobody took it for
 * abandoned and began undoing it), and stays locked against that until the batch commits.
 */
export async function touchImport(trx: Transaction<DB>, importId: number): Promise<void> {
  const touched = await trx
    .updateTable('imports')
    .set({ heartbeat_at: sql`now()` })
    .where('id', '=', importId)
    .where('state', '=', 'writing')
    .returning('id')
    .executeTakeFirst()
  if (!touched) throw new ConflictError('import_abandoned', 'The import was taken for abandoned and is being undone')
}

/** The final switch: from here on the import is done and nothing undoes it. */
export async function finishImport(db: Database, importId: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await touchImport(trx, importId)
    await trx
      .updateTable('imports')
      .set({ state: 'done', finished_at: sql`now()` })
      .where('id', '=', importId)
      .execute()
  })
}

/**
 * Undoes what an import wrote, from its newest audit row down, a short transaction at a time (the
 * place reached is kept, so an undo cut off goes on where it stopped). A record somebody else
 * changed after the import wrote it is kept as it is; the number kept is returned.
 */
export async function undoImport(db: Database, actor: Actor, importId: number): Promise<number> {
  // The undo's own audit rows name the import too: they are its story, and not somebody else's change.
  const undoer: Actor = { ...actor, importId }
  for (;;) {
    const finished = await db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable('imports')
        .set({ state: 'undoing', heartbeat_at: sql`now()` })
        .where('id', '=', importId)
        .where('state', 'in', ['writing', 'undoing'])
        .returning('undone_below')
        .executeTakeFirst()
      if (!claimed) return true
      const changes = await trx
        .selectFrom('audit_logs')
        .select(['id', 'table_name', 'record_id', 'action', 'old_values', 'new_values'])
        .where('import_id', '=', importId)
        .where('record_id', 'is not', null)
        .$narrowType<{ record_id: NotNull }>()
        .$if(claimed.undone_below !== null, (query) => query.where('id', '<', claimed.undone_below as number))
        .orderBy('id', 'desc')
        .limit(CHANGES_PER_UNDO)
        .execute()
      let kept = 0
      for (const change of changes) {
        if (!(await undoChange(trx, undoer, importId, change))) kept += 1
      }
      await trx
        .updateTable('imports')
        .set({
          kept: sql`kept + ${kept}`,
          ...(changes.length > 0
            ? { undone_below: (changes.at(-1) as Change).id }
            : { state: 'undone', finished_at: sql`now()` }),
        })
        .where('id', '=', importId)
        .execute()
      return changes.length === 0
    })
    if (finished) break
    await nextTurn()
  }
  const { kept } = await db.selectFrom('imports').select('kept').where('id', '=', importId).executeTakeFirstOrThrow()
  return kept
}

/**
 * Undoes the imports left unfinished by a process that stopped (their batches untouched for
 * ABANDONED_AFTER_SECONDS); run on a timer by every instance, so one that takes an import others
 * are undoing just helps. Returns how many it undid.
 */
export async function undoAbandonedImports(db: Database, actor: Actor): Promise<number> {
  const abandoned = await db
    .selectFrom('imports')
    .select('id')
    .where('state', 'in', ['writing', 'undoing'])
    .where('heartbeat_at', '<', sql<Date>`now() - make_interval(secs => ${ABANDONED_AFTER_SECONDS})`)
    .orderBy('heartbeat_at')
    .execute()
  for (const { id } of abandoned) await undoImport(db, actor, id)
  return abandoned.length
}

/** Undoes one audit row of the import; false when the record was changed by somebody else since, and is kept. */
async function undoChange(trx: Transaction<DB>, actor: Actor, importId: number, change: Change): Promise<boolean> {
  const changedSince = await trx
    .selectFrom('audit_logs')
    .select('id')
    .where('table_name', '=', change.table_name)
    .where('record_id', '=', change.record_id)
    .where('id', '>', change.id)
    .where((eb) => eb.or([eb('import_id', 'is', null), eb('import_id', '!=', importId)]))
    .limit(1)
    .executeTakeFirst()
  if (changedSince) return false
  const kind = `${change.table_name}.${change.action}`
  if (kind === 'clients.create') return removeClient(trx, actor, change.record_id)
  if (kind === 'leads.create') return removeLead(trx, actor, change.record_id)
  if (kind === 'lead_activities.create') return removeActivity(trx, actor, change.record_id)
  if (kind === 'clients.update') return restoreClient(trx, actor, change)
  if (kind === 'leads.update') return restoreLead(trx, actor, change)
  throw new Error(`An import has no undo for ${kind}`)
}

/** A client the import created, removed for good unless it has leads the import did not write. */
async function removeClient(trx: Transaction<DB>, actor: Actor, id: number): Promise<boolean> {
  const lead = await trx.selectFrom('leads').select('id').where('client_id', '=', id).limit(1).executeTakeFirst()
  if (lead) return false
  const client = await trx.deleteFrom('clients').where('id', '=', id).returning(CLIENT_COLUMNS).executeTakeFirst()
  if (!client) return true
  await writeAudit(trx, actor, { table: 'clients', recordId: id, action: 'purge', oldValues: null, newValues: client })
  await writeEvent(trx, actor, {
    type: 'client.deleted',
    resource: 'client',
    id,
    old: client,
    new: null,
    object: client,
  })
  return true
}

async function removeLead(trx: Transaction<DB>, actor: Actor, id: number): Promise<boolean> {
  const lead = await withClient(trx.selectFrom('leads').where('leads.id', '=', id)).executeTakeFirst()
  if (!lead) return true
  const { client: _client, ...row } = lead
  await trx.deleteFrom('leads').where('id', '=', id).execute()
  await writeAudit(trx, actor, { table: 'leads', recordId: id, action: 'purge', oldValues: null, newValues: row })
  await writeEvent(trx, actor, { type: 'lead.deleted', resource: 'lead', id, old: row, new: null, object: lead })
  return true
}

/** A timeline entry the import wrote (an assignment, a status change). */
async function removeActivity(trx: Transaction<DB>, actor: Actor, id: number): Promise<boolean> {
  const activity = await trx.deleteFrom('lead_activities').where('id', '=', id).returningAll().executeTakeFirst()
  if (!activity) return true
  const { search_vector: _vector, ...row } = activity
  await writeAudit(trx, actor, {
    table: 'lead_activities',
    recordId: id,
    action: 'purge',
    oldValues: null,
    newValues: row,
  })
  return true
}

/** Puts back the fields the import changed on a client. */
async function restoreClient(trx: Transaction<DB>, actor: Actor, change: Change): Promise<boolean> {
  const current = await lockClient(trx, change.record_id)
  const changes = diff(current, change.old_values as Partial<Client>)
  if (changes) await applyClientChanges(trx, actor, current, changes)
  return true
}

/** Puts back the fields the import changed on a lead (status, assignee, notes, client). */
async function restoreLead(trx: Transaction<DB>, actor: Actor, change: Change): Promise<boolean> {
  const current = await trx
    .selectFrom('leads')
    .select(LEAD_COLUMNS)
    .where('id', '=', change.record_id)
    .forUpdate()
    .executeTakeFirstOrThrow()
  const changes = diff(current, change.old_values as Partial<LeadRow>)
  if (changes) await applyLeadChanges(trx, actor, current, changes)
  return true
}
