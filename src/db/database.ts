import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { StartupError } from '../errors/startup.js'
import { describeDatabase } from './describe.js'
import { isDatabaseUnavailable } from './errors.js'
import { SEARCH_SESSION_SQL } from './search.js'
import type { DB } from './types.js'

// int8 (ids of audit rows, count(*)) as numbers: every value here stays far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10))
// date as its text (2026-12-31): a JS Date would put it at local midnight, a day off west of UTC.
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value)

export type Database = Kysely<DB>

export interface DatabaseOptions {
  url: string
  poolSize: number
  connectTimeoutMs: number
  statementTimeoutMs: number
  onPoolError?: (error: Error) => void
}

export interface DatabaseHandle {
  db: Database
  pool: pg.Pool
  close(): Promise<void>
}

export function openDatabase(options: DatabaseOptions): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    // A query that never gets an answer (a server gone silent) must not hold a request forever.
    query_timeout: options.statementTimeoutMs + options.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'mini-crm-api',
  })
  // pg reports a dropped connection as an 'error' event, on the pool for an idle client and on the
  // client itself while it is checked out; an event with no listener would end the process. The
  // query in flight rejects on its own, so both listeners only report.
  pool.on('error', (error) => options.onPoolError?.(error))
  pool.on('connect', (client) => {
    client.on('error', (error) => options.onPoolError?.(error))
    // Queued ahead of the first query of whoever checked the connection out. A failure (the server
    // gone at that instant) also fails that query, which reports it.
    client.query(SEARCH_SESSION_SQL).catch(() => {})
  })
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
  return {
    db,
    pool,
    async close() {
      await db.destroy()
    },
  }
}

/**
 * At start, waits for the database to answer, saying what it waits for and retrying once a second,
 * then gives up with a clear error. A refusal that waiting cannot mend (a wrong password, a missing
 * database) fails at once.
 */
export async function waitForDatabase(
  handle: DatabaseHandle,
  options: { url: string; seconds: number; log: (message: string) => void },
): Promise<void> {
  const where = describeDatabase(options.url)
  const giveUpAt = Date.now() + options.seconds * 1000
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`select 1`.execute(handle.db)
      if (attempt > 1) options.log(`${where} answers`)
      return
    } catch (error) {
      const reason = (error as Error).message
      if (!isDatabaseUnavailable(error)) throw new StartupError(`Cannot use ${where}: ${reason}`)
      if (Date.now() >= giveUpAt) {
        throw new StartupError(`${where} did not answer within ${options.seconds} s (${reason}): is it running?`)
      }
      if (attempt === 1) options.log(`Waiting for ${where} (${reason}); retrying for up to ${options.seconds} s`)
      else options.log(`Still waiting for ${where} (attempt ${attempt}: ${reason})`)
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
  }
}
