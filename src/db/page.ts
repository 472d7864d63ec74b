import { type SelectQueryBuilder, type Simplify, sql } from 'kysely'

/** The number of rows a filtered query matches: the `total` of a page. */
export async function countMatches<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): Promise<number> {
  const row = (await query.clearSelect().select(sql<number>`count(*)`.as('total')).executeTakeFirstOrThrow()) as {
    total: number | string
  }
  return Number(row.total)
}

export interface PageOf<T> {
  items: T[]
  total: number
  limit: number
  offset: number
}

/** One page of `ordered` (the matching rows, selected and sorted) and the count of `matching`, read at once. */
export async function readPage<DB, TB extends keyof DB, O, MDB, MTB extends keyof MDB, MO>(
  ordered: SelectQueryBuilder<DB, TB, O>,
  matching: SelectQueryBuilder<MDB, MTB, MO>,
  page: { limit: number; offset: number },
): Promise<PageOf<Simplify<O>>> {
  const [items, total] = await Promise.all([
    ordered.limit(page.limit).offset(page.offset).execute(),
    countMatches(matching),
  ])
  return { items, total, limit: page.limit, offset: page.offset }
}
