import { type Expression, type SqlBool, sql } from 'kysely'
import { ValidationError } from '../errors/domain.js'

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const DAY_MS = 86_400_000

/**
 * A `from`/`to` pair of query values as a half-open range [from, before): a date means the
 * whole UTC day, so `to=2026-11-30` includes all of the 30th; a timestamp `to` is inclusive.
 */
export function dateRange(
  fields: { from: string; to: string },
  values: { from?: string; to?: string },
): { from?: Date; before?: Date } {
  const from = values.from === undefined ? undefined : parseDate(fields.from, values.from)
  let before: Date | undefined
  if (values.to !== undefined) {
    const to = parseDate(fields.to, values.to)
    before = new Date(to.getTime() + (DATE_ONLY.test(values.to) ? DAY_MS : 1))
  }
  if (from && before && from >= before) throw ValidationError.field(fields.to, `must not be before ${fields.from}`)
  return { from, before }
}

function parseDate(field: string, value: string): Date {
  const date = new Date(DATE_ONLY.test(value) ? `${value}T00:00:00Z` : value)
  // Date rolls 2026-02-30 over into March: a day that does not exist is refused instead.
  const dayOfMonth = Number(value.slice(8, 10))
  if (Number.isNaN(date.getTime()) || (DATE_ONLY.test(value) && date.getUTCDate() !== dayOfMonth)) {
    throw ValidationError.field(field, 'is not a real date')
  }
  return date
}

/**
 * The `${name}_from` and `${name}_to` filters of `values` as conditions on `column` (none when both
 * are absent), read as dateRange reads them.
 */
export function rangeConditions(column: string, name: string, values: Record<string, unknown>): Expression<SqlBool>[] {
  const fields = { from: `${name}_from`, to: `${name}_to` }
  const range = dateRange(fields, {
    from: values[fields.from] as string | undefined,
    to: values[fields.to] as string | undefined,
  })
  return [
    ...(range.from ? [sql<SqlBool>`${sql.ref(column)} >= ${range.from}`] : []),
    ...(range.before ? [sql<SqlBool>`${sql.ref(column)} < ${range.before}`] : []),
  ]
}
