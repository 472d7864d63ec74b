import { type SelectQueryBuilder, sql } from 'kysely'

/** The number of rows a filtered query matches: the `total` of a page. */
export async function countMatches<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): Promise<number> {
  const row = (await query.clearSelect().select(sql<number>`count(*)`.as('total')).executeTakeFirstOrThrow()) as {
    total: number | string
  }
  return Number(row.total)
}
