import { setImmediate as nextTurn } from 'node:timers/promises'
import { type NotNull, type Selectable, sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import { assertActiveUser } from '../auth/active-user.js'
import type { Actor } from '../auth/actor.js'
import { applyClientChanges, lockClient } from '../clients/commands.js'
import { CLIENT_COLUMNS, type Client } from '../clients/queries.js'
import type { Database } from '../db/database.js'
import { isForeignKeyViolation } from '../db/errors.js'
import type { AuditLogs, DB } from '../db/types.js'
import { ConflictError, DomainError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { applyLeadChanges, assertLiveClient } from '../leads/commands.js'
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
 * Refuses a new import while another is unfinished: one cut off by a crash or by the database going
 * away is undone later, and rows a new import would count `unchanged` on top of it would go too.
 */
export async function assertNoUnfinishedImport(db: Database): Promise<void> {
  const unfinished = await db
    .selectFrom('imports')
    .select(['id', 'state'])
    .where('state', 'in', ['writing', 'undoing'])
    .orderBy('id')
    .limit(1)
    .executeTakeFirst()
  if (unfinished) {
    throw new ConflictError(
      'import_in_progress',
      `Import ${unfinished.id} is still being ${unfinished.state === 'writing' ? 'written' : 'undone'}: one import at a time; an import cut off is undone within ${(ABANDONED_AFTER_SECONDS + 60) / 60} minutes, then send the file again`,
    )
  }
}

/**
 * Undoes what an import wrote, from its newest audit row down, a short transaction at a time (the
 * place reached is kept, so an undo cut off goes on where it stopped). A record somebody else
 * changed after the import wrote it is kept as it is. With `abandonedOnly`, it starts only on an
 * import whose batches stopped ABANDONED_AFTER_SECONDS ago, so a slow but live writer keeps its import.
 */
export async function undoImport(
  db: Database,
  actor: Actor,
  importId: number,
  options: { abandonedOnly?: boolean } = {},
): Promise<{ undone: boolean; kept: number }> {
  // The undo's own audit rows name the import too: they are its story, and not somebody else's change.
  const undoer: Actor = { ...actor, importId }
  let claimedOnce = false
  for (;;) {
    const finished = await db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable('imports')
        .set({ state: 'undoing', heartbeat_at: sql`now()` })
        .where('id', '=', importId)
        .where('state', 'in', ['writing', 'undoing'])
        .$if(options.abandonedOnly === true && !claimedOnce, (query) =>
          query.where('heartbeat_at', '<', sql<Date>`now() - make_interval(secs => ${ABANDONED_AFTER_SECONDS})`),
        )
        .returning('undone_below')
        .executeTakeFirst()
      if (!claimed) return true
      claimedOnce = true
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
        if (!(await undoOrKeep(trx, undoer, importId, change))) kept += 1
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
  const { state, kept } = await db
    .selectFrom('imports')
    .select(['state', 'kept'])
    .where('id', '=', importId)
    .executeTakeFirstOrThrow()
  return { undone: claimedOnce && state === 'undone', kept }
}

/**
 * Undoes the imports left unfinished by a process that stopped (their batches untouched for
 * ABANDONED_AFTER_SECONDS); run on a timer by every instance, so one that takes an import others
 * are undoing just helps. One that fails does not hold up the others. Returns how many it undid.
 */
export async function undoAbandonedImports(db: Database, actor: Actor): Promise<number> {
  const abandoned = await db
    .selectFrom('imports')
    .select('id')
    .where('state', 'in', ['writing', 'undoing'])
    .where('heartbeat_at', '<', sql<Date>`now() - make_interval(secs => ${ABANDONED_AFTER_SECONDS})`)
    .orderBy('id')
    .execute()
  let undone = 0
  const failures: Error[] = []
  for (const { id } of abandoned) {
    try {
      if ((await undoImport(db, actor, id, { abandonedOnly: true })).undone) undone += 1
    } catch (error) {
      failures.push(error as Error)
    }
  }
  if (failures.length > 0) {
    throw new AggregateError(failures, `${failures.length} import(s) could not be undone: ${failures[0]?.message}`)
  }
  return undone
}

/**
 * Undoes one change, or keeps it when it cannot be undone any more (what it refers to is gone
 * since): a savepoint keeps such a failure from taking the rest of the batch with it.
 */
async function undoOrKeep(trx: Transaction<DB>, actor: Actor, importId: number, change: Change): Promise<boolean> {
  await sql`savepoint undo_change`.execute(trx)
  try {
    const undone = await undoChange(trx, actor, importId, change)
    await sql`release savepoint undo_change`.execute(trx)
    return undone
  } catch (error) {
    if (!(error instanceof DomainError) && !isForeignKeyViolation(error)) throw error
    await sql`rollback to savepoint undo_change`.execute(trx)
    return false
  }
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
  if (kind === 'leads.create') return removeLead(trx, actor, importId, change.record_id)
  // The timeline of a lead the import changed keeps the import's moves and then shows the undo's; a
  // lead the import created takes its timeline with it.
  if (kind === 'lead_activities.create') return true
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

/** A lead the import created, removed for good unless somebody else added to its timeline since. */
async function removeLead(trx: Transaction<DB>, actor: Actor, importId: number, id: number): Promise<boolean> {
  const othersActivity = await trx
    .selectFrom('lead_activities as activity')
    .select('activity.id')
    .where('activity.lead_id', '=', id)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('audit_logs')
            .select('audit_logs.id')
            .where('audit_logs.table_name', '=', 'lead_activities')
            .whereRef('audit_logs.record_id', '=', 'activity.id')
            .where('audit_logs.import_id', '=', importId),
        ),
      ),
    )
    .limit(1)
    .executeTakeFirst()
  if (othersActivity) return false
  const lead = await withClient(trx.selectFrom('leads').where('leads.id', '=', id)).executeTakeFirst()
  if (!lead) return true
  const { client: _client, ...row } = lead
  await trx.deleteFrom('leads').where('id', '=', id).execute()
  await writeAudit(trx, actor, { table: 'leads', recordId: id, action: 'purge', oldValues: null, newValues: row })
  await writeEvent(trx, actor, { type: 'lead.deleted', resource: 'lead', id, old: row, new: null, object: lead })
  return true
}

/** Puts back the fields the import changed on a client. */
async function restoreClient(trx: Transaction<DB>, actor: Actor, change: Change): Promise<boolean> {
  const current = await lockClient(trx, change.record_id)
  const changes = diff(current, change.old_values as Partial<Client>)
  if (changes) await applyClientChanges(trx, actor, current, changes)
  return true
}

/** Puts back the fields the import changed on a lead (status, assignee, notes, client, deal). */
async function restoreLead(trx: Transaction<DB>, actor: Actor, change: Change): Promise<boolean> {
  const current = await trx
    .selectFrom('leads')
    .select(LEAD_COLUMNS)
    .where('id', '=', change.record_id)
    .forUpdate()
    .executeTakeFirstOrThrow()
  const changes = diff(current, change.old_values as Partial<LeadRow>)
  if (!changes) return true
  // Put back only what still holds: an assignee since deactivated or deleted, a client since trashed, stays.
  if (changes.set.assigned_to != null) await assertActiveUser(trx, changes.set.assigned_to, 'assigned_to')
  if (changes.set.client_id !== undefined) await assertLiveClient(trx, changes.set.client_id)
  await applyLeadChanges(trx, actor, current, changes)
  return true
}
