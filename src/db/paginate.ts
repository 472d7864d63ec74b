import { createHash } from 'node:crypto'
import {
  type Expression,
  type QueryExecutorProvider,
  type RawBuilder,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
} from 'kysely'
import { ValidationError } from '../errors/domain.js'

/**
 * One page of any list: every list route answers this shape (see docs/api.md, "Lists").
 *
 * - `total` is exact up to MAX_COUNTED matches and MAX_COUNTED with `total_exact: false` beyond:
 *   the count reads at most MAX_COUNTED + 1 index entries, whatever the table holds.
 * - `next_cursor` is an opaque keyset (the sort key and id of the page's last row, plus a digest
 *   of the filters and sort): the next page starts after that row, so page 10,000 costs what page 1
 *   does. It is null on the last page.
 */
export interface Page<T> {
  items: T[]
  total: number
  total_exact: boolean
  limit: number
  offset: number
  next_cursor: string | null
}

export interface PageRequest {
  limit: number
  offset: number
  cursor?: string
}

export const MAX_COUNTED = 10_000
/** The deepest offset: every list's query schema (http/schemas.ts pageLimits) refuses a larger one. */
export const MAX_OFFSET = 10_000
export const OFFSET_TOO_DEEP = `must be at most ${MAX_OFFSET}; page deeper with cursor (the next_cursor of the previous page)`

/** Parses `sort` as validated by pageQuery into a column and a direction. */
export function parseSort<F extends string>(sort: F | `-${F}`): { column: F; direction: 'asc' | 'desc' } {
  return sort.startsWith('-')
    ? { column: sort.slice(1) as F, direction: 'desc' }
    : { column: sort as F, direction: 'asc' }
}

/**
 * The SQL type of a sort key, which says how a cursor carries it: timestamps as integer
 * microseconds since the epoch (a JS Date would lose PostgreSQL's microseconds and skip rows),
 * text as text, integers and reals (float4, the trigram distances) as JSON numbers, read back into
 * the same type so that the comparison is exact; numerics (amounts) and dates as their text.
 */
export type SortKeyType = 'timestamp' | 'text' | 'integer' | 'real' | 'numeric' | 'date'

export interface SortKey {
  /** The expression the rows are ordered by; NOT NULL (wrap a nullable column in coalesce and add an `is null` key). */
  expression: Expression<unknown>
  type: SortKeyType
}

export interface PageOrder {
  /** Most significant first; the row's unique id is appended by `paginate` as the last key. */
  keys: SortKey[]
  /** The unique id column that breaks ties, e.g. `leads.id`. */
  id: string
  direction: 'asc' | 'desc'
}

/** A sort key on a NOT NULL column. */
export function columnKey(column: string, type: SortKeyType): SortKey {
  return { expression: sql.ref(column), type }
}

/**
 * A nullable column as two keys, nulls first in ascending order: keyset comparisons on a NULL
 * would compare to NULL and lose rows.
 */
export function nullableColumnKeys(column: string, type: 'timestamp'): SortKey[] {
  return [
    { expression: sql`(${sql.ref(column)} is not null)::int`, type: 'integer' },
    { expression: sql`coalesce(${sql.ref(column)}, 'epoch'::timestamptz)`, type },
  ]
}

export interface ListQuery<DB, TB extends keyof DB, O, TS extends keyof DB, Row> {
  /** The filtered rows, nothing selected yet: the total counts these. */
  matching: SelectQueryBuilder<DB, TB, O>
  /** What `total` counts, when it is more than the rows `matching` ranks (a search's candidate set). */
  counted?: SelectQueryBuilder<DB, keyof DB, unknown>
  /** Adds the page's columns (and joins) to `matching`. */
  select: (matching: SelectQueryBuilder<DB, TB, O>) => SelectQueryBuilder<DB, TS, Row>
  order: PageOrder
  /** limit, offset (at most MAX_OFFSET, as validated) or cursor, as the caller sent them. */
  page: PageRequest
  /**
   * What a cursor must have been made with: the list's filters and sort as the caller sent them
   * (limit, offset and cursor are left out). A cursor made with others is a 400.
   */
  filters: object
}

/**
 * Runs one page of a list: the page's rows in the requested order (from `offset`, or after the
 * cursor's row) and the bounded total, in parallel.
 */
export async function paginate<DB, TB extends keyof DB, O, TS extends keyof DB, Row extends object>(
  db: QueryExecutorProvider,
  { matching, counted, select, order, page: request, filters }: ListQuery<DB, TB, O, TS, Row>,
): Promise<Page<Row>> {
  const digest = filterDigest(filters)
  const after = request.cursor === undefined ? undefined : cursorValues(request.cursor, order, filters)
  if (after && request.offset > 0) throw ValidationError.field('offset', 'cannot be combined with cursor')

  const keys = [...order.keys, columnKey(order.id, 'integer')]
  const keyValues = sql.join(keys.map((key) => cursorValue(key)))
  const withKeys = select(matching).select(sql<unknown[]>`json_build_array(${keyValues})`.as('page_key'))
  const expressions = keys.map((key) => key.expression)
  const start = after
    ? { after: keys.map((key, index) => fromCursorValue(key, after[index])) }
    : { offset: request.offset }
  const pageRows = keysetPage(withKeys, expressions, order.direction, request.limit + 1, start).execute(db)

  const [rows, total] = await Promise.all([pageRows, countUpTo(db, counted ?? matching, MAX_COUNTED + 1)])
  const more = rows.length > request.limit
  const items = rows.slice(0, request.limit) as Array<Row & { page_key?: unknown[] }>
  const last = items.at(-1)
  const nextCursor = more && last ? encodeCursor(last.page_key as unknown[], digest) : null
  for (const item of items) delete item.page_key
  return {
    items,
    total: Math.min(total, MAX_COUNTED),
    total_exact: total <= MAX_COUNTED,
    limit: request.limit,
    offset: request.offset,
    next_cursor: nextCursor,
  }
}

/** Where a page starts: after the row with these key values (in the order's key types), or at an offset. */
export type PageStart = { after: Expression<unknown>[] } | { offset: number }

/**
 * `query`'s rows in the order of `keys` (the last one unique, the row's id), `limit` of them from
 * `start`, as one statement.
 *
 * "After the row (a, id)" is not written as the row comparison `(a, id) < ($1, $2)`: PostgreSQL
 * estimates that from its first column alone, so when many rows share the bound's `a` (one
 * import's creation time) it expected one row and read, joined and sorted every remaining tied
 * row for each page. Nor as `a <= $1 and (a < $1 or id < $2)`: its index scan starts at the top of
 * the tie and filters out the rows already passed. It is one branch per key, each an equality on
 * the keys before and a range on its own (`a = $1 and id < $2`, then `a < $1`): on an index of
 * (a, id) each scan starts exactly at the bound, the estimates come from each column's statistics,
 * and each branch reads at most `limit` rows. The branches are joined by UNION ALL and the union
 * ordered again by the keys, which every branch selects as extra columns, left out of the rows.
 */
export function keysetPage<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  keys: Expression<unknown>[],
  direction: 'asc' | 'desc',
  limit: number,
  start: PageStart,
): { execute(db: QueryExecutorProvider): Promise<O[]> } {
  const ordered = (rows: SelectQueryBuilder<DB, TB, O>) =>
    keys.reduce<SelectQueryBuilder<DB, TB, O>>((sorted, key) => sorted.orderBy(key, direction), rows).limit(limit)
  if ('offset' in start) return ordered(start.offset > 0 ? query.offset(start.offset) : query)
  const branches = keysetBranches(keys, start.after, direction).map((condition) => ordered(query.where(condition)))
  if (branches.length === 1) return branches[0] as SelectQueryBuilder<DB, TB, O>
  const columns = keys.map((_, index) => `keyset_${index}`)
  const union = sql.join(
    branches.map((branch) => {
      const withKeys = keys.reduce<SelectQueryBuilder<DB, TB, O>>(
        (selected, key, index) => selected.select(sql`${key}`.as(columns[index] as string)) as never,
        branch,
      )
      return sql`(${withKeys})`
    }),
    sql` union all `,
  )
  const order = sql.join(columns.map((column) => sql`${sql.ref(column)} ${sql.raw(direction)}`))
  const statement = sql<O>`select * from (${union}) as keyset_page order by ${order} limit ${limit}`
  return {
    async execute(db) {
      const { rows } = await statement.execute(db)
      for (const row of rows) for (const column of columns) delete (row as Record<string, unknown>)[column]
      return rows
    },
  }
}

/**
 * "After the bound in the order of `keys`" as disjoint conditions, nearest rows first: for each key
 * from the last, the keys before it equal to their bounds and this one past its bound.
 */
function keysetBranches(
  keys: Expression<unknown>[],
  bounds: Expression<unknown>[],
  direction: 'asc' | 'desc',
): Expression<SqlBool>[] {
  const past = sql.raw(direction === 'desc' ? '<' : '>')
  return keys
    .map((key, index) => {
      const equal = keys.slice(0, index).map((earlier, position) => sql<SqlBool>`${earlier} = ${bounds[position]}`)
      return sql.join([...equal, sql<SqlBool>`${key} ${past} ${bounds[index]}`], sql` and `) as Expression<SqlBool>
    })
    .reverse()
}

/** Counts the matching rows, stopping at `limit`: the rows past it are never read. */
export async function countUpTo<DB>(
  db: QueryExecutorProvider,
  matching: SelectQueryBuilder<DB, keyof DB, unknown>,
  limit: number,
): Promise<number> {
  const limited = matching.clearSelect().clearOrderBy().select(sql`1`.as('one')).limit(limit)
  const { rows } = await sql<{ total: number }>`select count(*) as total from (${limited}) as matched`.execute(db)
  return Number(rows[0]?.total ?? 0)
}

function cursorValue(key: SortKey): RawBuilder<unknown> {
  if (key.type === 'timestamp') return sql`(extract(epoch from ${key.expression}) * 1000000)::bigint`
  if (key.type === 'numeric' || key.type === 'date') return sql`${key.expression}::text`
  return sql`${key.expression}`
}

function fromCursorValue(key: SortKey, value: unknown): RawBuilder<unknown> {
  if (key.type === 'timestamp') return sql`timestamptz 'epoch' + ${value}::bigint * interval '1 microsecond'`
  if (key.type === 'integer') return sql`${value}::bigint`
  if (key.type === 'real') return sql`${value}::real`
  if (key.type === 'numeric') return sql`${value}::numeric`
  if (key.type === 'date') return sql`${value}::date`
  return sql`${value}::text`
}

/** Filters and sort in a canonical order, hashed: a cursor carries this to prove where it came from. */
function filterDigest(filters: object): string {
  const { limit: _limit, offset: _offset, cursor: _cursor, ...rest } = filters as Record<string, unknown>
  const canonical = Object.keys(rest)
    .filter((key) => rest[key] !== undefined)
    .sort()
    .map((key) => [key, rest[key]])
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 16)
}

/**
 * The cursor that continues after the row with these sort key values (timestamps as epoch
 * microseconds, then the id), as next_cursor would give it for a list with these filters: for
 * tools that start mid-list (the benchmark's deep page).
 */
export function cursorAfter(values: unknown[], filters: object): string {
  return encodeCursor(values, filterDigest(filters))
}

/** 2027-03-31, a day that exists (PostgreSQL would refuse 2027-02-30 with an error, not a 400). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false
  const date = new Date(`${value}T00:00:00Z`)
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value
}

function encodeCursor(values: unknown[], digest: string): string {
  return Buffer.from(JSON.stringify({ k: values, f: digest })).toString('base64url')
}

const MAX_CURSOR_LENGTH = 2048

/**
 * The sort key values a cursor of this list (its order, its filters) continues after; a 400 naming
 * `cursor` when it was made with other filters or another sort, or is not a cursor at all.
 */
export function cursorValues(cursor: string, order: PageOrder, filters: object): unknown[] {
  return decodeCursor(cursor, order, filterDigest(filters))
}

function decodeCursor(cursor: string, order: PageOrder, digest: string): unknown[] {
  const invalid = () => ValidationError.field('cursor', 'is not a next_cursor of this list')
  if (cursor.length > MAX_CURSOR_LENGTH) throw invalid()
  let decoded: unknown
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  const { k: values, f: madeWith } = (decoded ?? {}) as { k?: unknown; f?: unknown }
  const types = [...order.keys.map((key) => key.type), 'integer' as const]
  if (!Array.isArray(values) || values.length !== types.length) throw invalid()
  if (madeWith !== digest) {
    throw ValidationError.field('cursor', 'was made with other filters or another sort; send the same ones')
  }
  values.forEach((value, index) => {
    const type = types[index]
    const valid =
      type === 'text'
        ? typeof value === 'string' && !value.includes('\u0000')
        : type === 'numeric'
          ? typeof value === 'string' && /^\d{1,15}(\.\d{1,2})?$/.test(value)
          : type === 'date'
            ? typeof value === 'string' && isCalendarDate(value)
            : type === 'real'
              ? typeof value === 'number' && Number.isFinite(value)
              : Number.isSafeInteger(value)
    if (!valid) throw invalid()
  })
  return values
}
