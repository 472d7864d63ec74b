import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../src/db/types.js'

/** Cumulative bounds for width_bucket(random() * total, bounds): bucket i has weights[i - 1]. */
export function bounds(weights: readonly number[]): number[] {
  const result: number[] = []
  let sum = 0
  for (const weight of weights) {
    result.push(sum)
    sum += weight
  }
  return result
}

export const total = (weights: readonly number[]) => weights.reduce((sum, weight) => sum + weight, 0)

/** Lists of lists as one flat array plus where each list starts (1-based) and how long it is. */
export function flatten(lists: readonly (readonly string[])[]): {
  items: string[]
  starts: number[]
  counts: number[]
} {
  const items: string[] = []
  const starts: number[] = []
  const counts: number[] = []
  for (const list of lists) {
    starts.push(items.length + 1)
    counts.push(list.length)
    items.push(...list)
  }
  return { items, starts, counts }
}

export interface TimeWindow {
  start: Date
  end: Date
}

/** A window of time ending now, by the database's clock. */
export async function timeWindow(conn: Kysely<DB>, start: RawBuilder<unknown>): Promise<TimeWindow> {
  const result = await sql<TimeWindow>`select ${start} as start, now() as end`.execute(conn)
  return result.rows[0] as TimeWindow
}

/**
 * The part of the window a batch's rows are dated in: batch after batch moves forward in time, so
 * each one adds to the end of the date indexes instead of to pages all over them (which, on a big
 * table, costs ten times the time and write-ahead log).
 */
export function timeSlice(window: TimeWindow, done: number, size: number, count: number): TimeWindow {
  const span = window.end.getTime() - window.start.getTime()
  const at = (rows: number) => new Date(window.start.getTime() + (span * rows) / count)
  return { start: at(done), end: at(done + size) }
}
