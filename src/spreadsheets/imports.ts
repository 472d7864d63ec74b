import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Transaction } from 'kysely'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { DomainError, ValidationError } from '../errors/domain.js'
import { type ColumnMap, mapColumns } from './columns.js'
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
  /** Writes some planned rows, each with its audit row and event. */
  apply(trx: Transaction<DB>, items: Item[]): Promise<Applied<Item>>
  /** Clients the plan would create (lead imports), for a dry run's answer. */
  plannedClients?: () => number
}

/**
 * Plans the whole file first: a dry run answers with the plan, and by default a failed row writes
 * nothing (422). Then the planned rows are written a batch at a time, each batch in a transaction
 * of its own, so that the import never holds the database while other requests wait. A batch that
 * meets a concurrent change (a phone taken, a lead trashed or moved meanwhile) is rolled back and
 * written again row by row: the rows that still fail are reported as failed rows, the others stay.
 */
export async function runImport<Item extends PlannedRow>(
  db: Database,
  options: ImportOptions,
  steps: ImportSteps<Item>,
): Promise<{ result: ImportResult; clientsCreated: number }> {
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
  let clientsCreated = 0
  const lose = (item: Item, message: string) => {
    report.result[item.kind] -= 1
    report.fail(item.row, item.field, message)
  }
  const write = async (batch: Item[]) => {
    const applied = await db.transaction().execute((trx) => steps.apply(trx, batch))
    clientsCreated += applied.clientsCreated
    for (const { item, message } of applied.lost) lose(item, message)
  }
  for (let start = 0; start < items.length; start += ROWS_PER_WRITE) {
    const batch = items.slice(start, start + ROWS_PER_WRITE)
    try {
      await write(batch)
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
      for (const item of batch) {
        await write([item]).catch((rowError: unknown) => {
          if (!(rowError instanceof DomainError)) throw rowError
          lose(item, rowError.message)
        })
      }
    }
    // Requests waiting for the connection (one, on the embedded database) go before the next batch.
    await nextTurn()
  }
  return { result: report.result, clientsCreated }
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
