import { type Kysely, sql } from 'kysely'
import type { DB } from './types.js'

/** A table of fixed-window counters: a key, its count, and when its window started. */
export type WindowCounterTable =
  | { table: 'login_failures'; count: 'failures' }
  | { table: 'form_submission_counts'; count: 'submissions' }

export interface WindowCount {
  key: string
  count: number
  /** Seconds until the key's window ends (at least 1). */
  secondsLeft: number
}

/**
 * The one fixed-window throttle: adds one to each key's count, in PostgreSQL so that every instance
 * shares the counts, in one statement so that concurrent callers cannot all slip under a limit. A
 * key whose window (started by its first count) has ended, or whose count went back to 0, starts a
 * new window. The caller compares the counts with its limits.
 */
export async function countInWindow(
  db: Kysely<DB>,
  { table, count }: WindowCounterTable,
  keys: string[],
  windowSeconds: number,
): Promise<WindowCount[]> {
  const counted = sql.ref(`${table}.${count}`)
  const started = sql.ref(`${table}.window_started_at`)
  const restart = sql<boolean>`(${counted} = 0 or ${started} <= now() - make_interval(secs => ${windowSeconds}))`
  const rows = await sql<{ key: string; count: number; seconds_left: number }>`
    insert into ${sql.table(table)} (key, ${sql.ref(count)}, window_started_at)
    select key, 1, now() from unnest(${keys}::text[]) as key
    on conflict (key) do update set
      ${sql.ref(count)} = case when ${restart} then 1 else ${counted} + 1 end,
      window_started_at = case when ${restart} then now() else ${started} end
    returning key, ${sql.ref(count)} as count,
      ceil(extract(epoch from window_started_at + make_interval(secs => ${windowSeconds}) - now())) as seconds_left
  `.execute(db)
  return rows.rows.map((row) => ({
    key: row.key,
    count: Number(row.count),
    secondsLeft: Math.max(1, Number(row.seconds_left)),
  }))
}
