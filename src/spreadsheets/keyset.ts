import { type Expression, type RawBuilder, type SqlBool, sql } from 'kysely'

/** Where the previous batch ended: the sort column's value as PostgreSQL wrote it, and the id. */
export interface KeysetPosition {
  sort_key: string
  id: number
}

// A few thousand rows a statement: each query is short, so on the embedded database (one
// connection) other requests run between two batches of an export, and a client that goes away
// stops the export after the batch in flight.
export const EXPORT_BATCH_SIZE = 1000

/**
 * The sort column as text, to resume after it exactly: a JavaScript Date keeps milliseconds, and
 * a timestamp with microseconds would make the next batch repeat or skip rows.
 */
export function sortKey(column: string): RawBuilder<string> {
  return sql<string>`${sql.ref(column)}::text`
}

/** Rows after `position` in the order (column, id) ascending or descending. */
export function afterPosition(
  column: string,
  idColumn: string,
  direction: 'asc' | 'desc',
  position: KeysetPosition,
): Expression<SqlBool> {
  const comparison = direction === 'asc' ? sql.raw('>') : sql.raw('<')
  return sql<SqlBool>`(${sql.ref(column)}, ${sql.ref(idColumn)}) ${comparison} (${position.sort_key}, ${position.id})`
}

/** Reads batch after batch, each starting where the previous one ended, until one comes back short. */
export async function* keysetBatches<Row extends KeysetPosition>(
  readBatch: (after: KeysetPosition | null, limit: number) => Promise<Row[]>,
  batchSize = EXPORT_BATCH_SIZE,
): AsyncGenerator<Row[]> {
  let after: KeysetPosition | null = null
  for (;;) {
    const rows = await readBatch(after, batchSize)
    if (rows.length > 0) yield rows
    const last = rows.at(-1)
    if (!last || rows.length < batchSize) return
    after = { sort_key: last.sort_key, id: last.id }
  }
}
