import { type Expression, type QueryExecutorProvider, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely'
import { keysetPage } from '../db/paginate.js'

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
export function sortKey(column: string | Expression<unknown>): RawBuilder<string> {
  return sql<string>`${typeof column === 'string' ? sql.ref(column) : column}::text`
}

/**
 * One batch of `query` (its columns selected) in the order (column, id): the first rows, or those
 * after `position`, through the lists' keyset (see keysetPage: exact index bounds over ties too).
 */
export function batchAfter<DB, TB extends keyof DB, O>(
  db: QueryExecutorProvider,
  query: SelectQueryBuilder<DB, TB, O>,
  order: { column: string | Expression<unknown>; id: string; direction: 'asc' | 'desc' },
  position: KeysetPosition | null,
  limit: number,
): Promise<O[]> {
  const keys = [typeof order.column === 'string' ? sql.ref(order.column) : order.column, sql.ref(order.id)]
  // The sort key is the column's text: PostgreSQL reads it back as the column's type.
  const start = position ? { after: [sql`${position.sort_key}`, sql`${position.id}`] } : { offset: 0 }
  return keysetPage(query, keys, order.direction, limit, start).execute(db)
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
