import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Transaction } from 'kysely'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { isConcurrencyFailure } from '../db/errors.js'
import type { DB } from '../db/types.js'
import { DomainError, ValidationError } from '../errors/domain.js'
import { type ColumnMap, mapColumns } from './columns.js'
import { assertNoUnfinishedImport, beginImport, finishImport, touchImport, undoImport } from './import-undo.js'
import type { SheetRow } from './reader.js'

export interface ImportOptions {
  dryRun: boolean
  mode: 'create' | 'upsert'
  partial: boolean
}

export interface RowError {
  row: number
  field: string
  message: string
}

export interface ImportResult {
  created: number
  updated: number
  unchanged: number
  failed: number
  errors: RowError[]
}

// Enough to fix a file by; a file where every row fails would otherwise answer with megabytes.
export const MAX_REPORTED_ERRORS = 1000
/** Rows checked against the database at once while planning; the lookup lets other requests run. */
export const ROWS_PER_LOOKUP = 250
/** Rows written by one transaction: short enough that other requests run between two of them. */
export const ROWS_PER_WRITE = 250

export class Report {
  readonly result: ImportResult = { created: 0, updated: 0, unchanged: 0, failed: 0, errors: [] }

  fail(row: number, field: string, message: string): void {
    this.result.failed += 1
    if (this.result.errors.length < MAX_REPORTED_ERRORS) this.result.errors.push({ row, field, message })
  }
}

/** A row the plan writes: where it is in the file, the column its errors name, and what it counts as. */
export interface PlannedRow {
  row: number
  field: string
  kind: 'created' | 'updated'
}

/** What a batch's transaction committed: rows another request got to first, and clients created. */
export interface Applied<Item extends PlannedRow> {
  lost: Array<{ item: Item; message: string }>
  clientsCreated: number
}

export interface ImportSteps<Item extends PlannedRow> {
  /** Reads and checks every row (the database only in short reads); failed rows go to the report. */
  plan(report: Report): Promise<Item[]>
  /** Writes some planned rows, each with its audit row and event, as `actor` (who names the import). */
  apply(trx: Transaction<DB>, items: Item[], actor: AuthenticatedActor): Promise<Applied<Item>>
  /** Clients the plan would create (lead imports), for a dry run's answer. */
  plannedClients?: () => number
}

/**
 * Plans the whole file first: a dry run answers with the plan, and by default a failed row writes
 * nothing (422). Then the planned rows are written a batch at a time, each batch in a transaction
 * of its own, so that the import never holds the database while other requests wait. The import
 * stays all-or-nothing all the same: its audit rows name it, and if a batch fails (a phone taken or
 * a lead trashed meanwhile, without partial=true; a deadlock; the database gone) what the earlier
 * batches wrote is undone before the answer (409 import_conflict), or, when the process itself
 * stops, by the housekeeping of whichever instance runs next (see import-undo.ts). With
 * partial=true a batch that meets a concurrent change is written again row by row instead: the rows
 * that still fail are reported as failed rows, the others stay.
 */
export async function runImport<Item extends PlannedRow>(
  db: Database,
  actor: AuthenticatedActor,
  kind: 'clients' | 'leads',
  options: ImportOptions,
  steps: ImportSteps<Item>,
): Promise<{ result: ImportResult; clientsCreated: number }> {
  if (!options.dryRun) await assertNoUnfinishedImport(db)
  const report = new Report()
  const items = await steps.plan(report)
  if (options.dryRun) return { result: report.result, clientsCreated: steps.plannedClients?.() ?? 0 }
  if (!options.partial && report.result.failed > 0) {
    throw new DomainError(
      422,
      'import_failed',
      `${report.result.failed} row(s) failed, so nothing was written; fix them, or send partial=true to keep the good rows`,
      { created: 0, updated: 0, unchanged: 0, failed: report.result.failed, errors: report.result.errors },
    )
  }
  if (items.length === 0) return { result: report.result, clientsCreated: 0 }
  const importId = await beginImport(db, actor, kind)
  const writer: AuthenticatedActor = { ...actor, importId }
  let clientsCreated = 0
  const lose = (item: Item, message: string) => {
    report.result[item.kind] -= 1
    report.fail(item.row, item.field, message)
  }
  const write = (batch: Item[]) =>
    db.transaction().execute(async (trx) => {
      await touchImport(trx, importId)
      return steps.apply(trx, batch, writer)
    })
  try {
    for (let start = 0; start < items.length; start += ROWS_PER_WRITE) {
      const batch = items.slice(start, start + ROWS_PER_WRITE)
      const applied = await write(batch).catch(async (error: unknown) => {
        if (!isRowFailure(error)) throw error
        // Which rows? Each alone, in a transaction of its own.
        const alone: Applied<Item> = { lost: [], clientsCreated: 0 }
        for (const item of batch) {
          const one = await write([item]).catch((rowError: unknown) => {
            if (!isRowFailure(rowError)) throw rowError
            alone.lost.push({ item, message: rowError.message })
          })
          alone.clientsCreated += one?.clientsCreated ?? 0
          alone.lost.push(...(one?.lost ?? []))
        }
        return alone
      })
      clientsCreated += applied.clientsCreated
      for (const { item, message } of applied.lost) lose(item, message)
      // Without partial=true a row lost to a change made meanwhile fails the whole import.
      if (!options.partial && applied.lost.length > 0) throw new RowsLost(applied.lost)
      // Requests waiting for the connection (one, on the embedded database) go before the next batch.
      await nextTurn()
    }
    await finishImport(db, importId)
  } catch (error) {
    await undoAfterFailure(db, actor, importId, error)
  }
  return { result: report.result, clientsCreated }
}

/** A row the database refused for a reason of its own (a phone taken, a lead gone): the import goes on without it. */
function isRowFailure(error: unknown): error is DomainError {
  return error instanceof DomainError && error.code !== 'import_abandoned'
}

/** Rows lost to changes made meanwhile, when partial=false. */
class RowsLost extends Error {
  constructor(readonly lost: Array<{ item: PlannedRow; message: string }>) {
    super('rows lost to changes made meanwhile')
  }
}

/**
 * Undoes what the import wrote, then answers 409 import_conflict when rows met changes made
 * meanwhile or a batch a deadlock, else with the error that stopped the import (the database gone:
 * 503). If the undo cannot finish either, the housekeeping finishes it later.
 */
async function undoAfterFailure(
  db: Database,
  actor: AuthenticatedActor,
  importId: number,
  error: unknown,
): Promise<never> {
  if (error instanceof DomainError && error.code === 'import_abandoned') throw error
  let kept: number
  try {
    kept = (await undoImport(db, actor, importId)).kept
  } catch (undoError) {
    // The undo could not run (the database gone: 503); the housekeeping finishes it later. A
    // failure of the import's own making is answered as the undo's failure, never as an inner error.
    throw error instanceof RowsLost || isConcurrencyFailure(error) ? undoError : error
  }
  const keptNote = kept === 0 ? '' : `; ${kept} change(s) somebody else built on meanwhile were kept`
  if (error instanceof RowsLost) {
    const report = new Report()
    for (const { item, message } of error.lost) {
      report.fail(item.row, item.field, message)
    }
    throw new DomainError(
      409,
      'import_conflict',
      `${report.result.failed} row(s) met a change made meanwhile, so what the import had written was undone${keptNote}; run it again, or send partial=true to keep the good rows`,
      { created: 0, updated: 0, unchanged: 0, failed: report.result.failed, errors: report.result.errors },
    )
  }
  if (isConcurrencyFailure(error)) {
    throw new DomainError(
      409,
      'import_conflict',
      `A batch met a concurrent change (a deadlock), so what the import had written was undone${keptNote}; run it again`,
      { created: 0, updated: 0, unchanged: 0, failed: 0, errors: [] },
    )
  }
  throw error
}

/** The header row, mapped to fields; an empty file is a 400. */
export async function headerOf<F extends string>(
  rows: AsyncGenerator<SheetRow>,
  aliases: Record<F, readonly string[]>,
  required: NoInfer<F>[],
): Promise<ColumnMap<F>> {
  const first = await rows.next()
  if (first.done) throw ValidationError.field('file', 'is empty: the first row must name the columns')
  return mapColumns(first.value.cells, aliases, required)
}

/** The rows after the header, ROWS_PER_LOOKUP at a time. */
export async function* batchesOf(rows: AsyncGenerator<SheetRow>): AsyncGenerator<SheetRow[]> {
  let batch: SheetRow[] = []
  for await (const row of rows) {
    batch.push(row)
    if (batch.length === ROWS_PER_LOOKUP) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}
