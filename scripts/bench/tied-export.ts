/**
 * The lead export over rows that share one creation time (one import's transaction), on a real
 * PostgreSQL:
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres npx tsx scripts/bench/tied-export.ts [--rows N]
 *
 * Makes a database of its own beside DATABASE_URL's (dropped at the end): 1,000 clients, and N leads
 * (200,000) of the first one with one created_at, analysed. Then streams the CSV export of every lead
 * newest first and oldest first, as the route does but without HTTP, and prints the rows a second and
 * the slowest batch of 1,000.
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import pg from 'pg'
import type { AuthenticatedActor } from '../../src/auth/authenticate.js'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { LEAD_EXPORT_COLUMNS, type LeadExportRow, leadExportBatches } from '../../src/spreadsheets/exports.js'
import { spreadsheetStream } from '../../src/spreadsheets/writer.js'
import { log } from './common.js'

const { values } = parseArgs({ options: { rows: { type: 'string', default: '200000' } } })
const rows = Number(values.rows)
const base = process.env.DATABASE_URL
if (!base) throw new Error('DATABASE_URL names the PostgreSQL server')

async function onServer(run: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: base })
  await client.connect()
  await run(client).finally(() => client.end())
}

/** Every batch timed as the stream asks for it. */
async function* timed(batches: AsyncGenerator<LeadExportRow[]>, seconds: number[]): AsyncGenerator<LeadExportRow[]> {
  for (;;) {
    const started = performance.now()
    const next = await batches.next()
    seconds.push((performance.now() - started) / 1000)
    if (next.done) return
    yield next.value
  }
}

const name = `crm_tied_${randomBytes(4).toString('hex')}`
const url = new URL(base)
url.pathname = `/${name}`
await onServer((client) => client.query(`create database ${name}`))
try {
  await migrate(url.toString())
  await onServer(async () => {
    const client = new pg.Client({ connectionString: url.toString() })
    await client.connect()
    await client
      .query(`
        insert into clients (client_type, contact_name, phone)
          select 'natural', 'Cliente ' || i, '+58412' || lpad(i::text, 7, '0') from generate_series(1, 1000) as i;
        insert into leads (client_id, channel, status, created_at)
          select 1, 'web', 'new', timestamptz '2026-06-01 10:00:00.123456+00' from generate_series(1, ${rows});
        analyze;`)
      .finally(() => client.end())
  })
  const handle = openDatabase({
    url: url.toString(),
    poolSize: 1,
    connectTimeoutMs: 10_000,
    statementTimeoutMs: 600_000,
  })
  const admin: AuthenticatedActor = { userId: 1, username: 'admin', role: 'admin', requestId: null }
  try {
    for (const sort of ['-created_at', 'created_at'] as const) {
      const seconds: number[] = []
      let exported = 0
      const started = performance.now()
      const stream = spreadsheetStream(
        'csv',
        LEAD_EXPORT_COLUMNS,
        timed(leadExportBatches(handle.db, admin, { sort }), seconds),
        async (outcome) => {
          exported = outcome.rows
        },
      )
      let bytes = 0
      for await (const chunk of stream) bytes += (chunk as Buffer).length
      const elapsed = (performance.now() - started) / 1000
      log(
        `sort=${sort}: ${exported} rows, ${(bytes / 1e6).toFixed(1)} MB in ${elapsed.toFixed(2)} s = ` +
          `${Math.round(exported / elapsed)} rows/s; slowest batch ${Math.max(...seconds).toFixed(3)} s`,
      )
    }
  } finally {
    await handle.close()
  }
} finally {
  await onServer((client) => client.query(`drop database if exists ${name} with (force)`))
}
