import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { StartupError } from '../errors/startup.js'
import { describeDatabase } from './describe.js'
import { isDatabaseUnavailable } from './errors.js'
import { EMBEDDED_SESSION_SQL } from './search.js'
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
  /** 0: none sent, the server's own (a pooler such as PgBouncer refuses it at connect). */
  statementTimeoutMs: number
  onPoolError?: (error: Error) => void
  /** The embedded database: one session, which does not read the database's own defaults. */
  embedded?: boolean
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
    ...(options.statementTimeoutMs > 0 && {
      statement_timeout: options.statementTimeoutMs,
      // A query that never gets an answer (a server gone silent) must not hold a request forever.
      query_timeout: options.statementTimeoutMs + options.connectTimeoutMs,
    }),
    idleTimeoutMillis: 30_000,
    application_name: 'mini-crm-api',
  })
  // pg reports a dropped connection as an 'error' event, on the pool for an idle client and on the
  // client itself while it is checked out; an event with no listener would end the process. The
  // query in flight rejects on its own, so both listeners only report.
  pool.on('error', (error) => options.onPoolError?.(error))
  pool.on('connect', (client) => {
    client.on('error', (error) => options.onPoolError?.(error))
    // Queued ahead of the first query of whoever checked the connection out. No pooler stands in
    // front of the embedded database, and its one session outlives the connection.
    if (options.embedded) client.query(EMBEDDED_SESSION_SQL).catch(() => {})
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
 * database) fails at once. On a connection of its own, closed after: the pool's connections open after
 * the migrations, so they start with the session defaults those set.
 */
export async function waitForDatabase(options: {
  url: string
  seconds: number
  connectTimeoutMs: number
  log: (message: string) => void
}): Promise<void> {
  const where = describeDatabase(options.url)
  const giveUpAt = Date.now() + options.seconds * 1000
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: options.connectTimeoutMs })
    // A connection dropped while it is in hand is reported by the query's own failure.
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('select 1')
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
    } finally {
      await client.end().catch(() => {})
    }
  }
}
