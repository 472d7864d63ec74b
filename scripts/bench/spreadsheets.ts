/**
 * `npm run bench:spreadsheets`: the exports and imports beside their floors, on a real PostgreSQL.
 *
 *   DATABASE_URL=postgres://... npm run bench:spreadsheets -- [--import-rows N]
 *
 * DATABASE_URL is a seeded database (npm run seed:demo): every lead is exported as CSV and as
 * XLSX through the API, and the same rows, in the same order, are copied by PostgreSQL itself
 * (`COPY (…) TO STDOUT`) over a connection of the same kind; the ratio is the API's rate over
 * COPY's. The import writes N clients (100,000) into a new, empty database beside it, then the
 * same file again in upsert mode. Prints `uptime` too: the machine is shared.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { createOrResetAdmin } from '../../src/users/bootstrap.js'
import { startServer } from '../../tests/helpers/server.js'
import { BENCH_ADMIN, log } from './common.js'

// The export's own statement, as one query: the leads, their client and assignee, newest first.
const LEADS_SQL = `select l.id, l.status, l.channel, l.client_id, c.contact_name, c.company_name, c.phone,
    l.assigned_to, u.username, l.admin_notes, l.sales_notes, l.created_by, l.created_at, l.updated_at,
    l.status_changed_at
  from leads l join clients c on c.id = l.client_id left join users u on u.id = l.assigned_to
  order by l.created_at desc, l.id desc`

async function timeCopy(url: string): Promise<{ seconds: number; bytes: number; rows: number }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const started = performance.now()
    const stream = client.query(copyTo(`copy (${LEADS_SQL}) to stdout with (format csv, header)`))
    let bytes = 0
    let rows = 0
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length
      for (const byte of chunk) if (byte === 10) rows += 1
    }
    return { seconds: (performance.now() - started) / 1000, bytes, rows: rows - 1 }
  } finally {
    await client.end()
  }
}

async function timeDownload(url: string, token: string): Promise<{ seconds: number; bytes: number }> {
  const started = performance.now()
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  if (response.status !== 200 || !response.body) throw new Error(`${url}: ${response.status}`)
  let bytes = 0
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length
  return { seconds: (performance.now() - started) / 1000, bytes }
}

async function login(base: string, username: string, password: string): Promise<string> {
  const response = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  return ((await response.json()) as { access_token: string }).access_token
}

function clientsCsv(rows: number): string {
  const lines = ['nombre,telefono,correo,empresa']
  // Venezuelan mobile numbers 0412-1000000 upwards: each valid, none repeated.
  for (let index = 0; index < rows; index++) {
    lines.push(`Cliente ${index},0412-${1_000_000 + index},cliente${index}@example.com,`)
  }
  return `${lines.join('\n')}\n`
}

async function withServer<T>(databaseUrl: string, run: (base: string, token: string) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(join(tmpdir(), 'crm-bench-sheets-'))
  const handle = openDatabase({ url: databaseUrl, poolSize: 1, connectTimeoutMs: 10_000, statementTimeoutMs: 60_000 })
  const password = randomBytes(18).toString('base64url')
  await createOrResetAdmin(handle.db, BENCH_ADMIN, password)
  await handle.close()
  const server = await startServer({
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    DB_STATEMENT_TIMEOUT_MS: '600000',
  })
  try {
    return await run(server.url, await login(server.url, BENCH_ADMIN, password))
  } finally {
    await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'import-rows': { type: 'string', default: '100000' } } })
  const importRows = Number(values['import-rows'])
  const url = process.env.DATABASE_URL
  if (!url?.startsWith('postgres')) throw new Error('DATABASE_URL must name a seeded PostgreSQL database')
  await migrate(url)
  const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim()
  console.log(`uptime before: ${uptime()}`)

  // The import goes into an empty database of its own, so that every row is new.
  const importDb = `crm_bench_import_${process.pid}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`create database ${importDb}`)
  const importUrl = new URL(url)
  importUrl.pathname = `/${importDb}`
  try {
    await migrate(importUrl.toString())
    await withServer(importUrl.toString(), async (base, token) => {
      const file = clientsCsv(importRows)
      for (const mode of ['create', 'upsert']) {
        const started = performance.now()
        const response = await fetch(`${base}/clients/import?mode=${mode}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
          body: file,
        })
        const seconds = (performance.now() - started) / 1000
        const result = (await response.json()) as Record<string, unknown>
        console.log(
          `import ${importRows.toLocaleString('en')} clients (${(file.length / 2 ** 20).toFixed(1)} MB, mode=${mode}): ${response.status} in ${seconds.toFixed(1)} s: created ${result.created}, updated ${result.updated}, unchanged ${result.unchanged}, failed ${result.failed}`,
        )
      }
    })
  } finally {
    await admin.query(`drop database if exists ${importDb} with (force)`)
    await admin.end()
  }
  await withServer(url, async (base, token) => {
    log('warming up')
    await timeDownload(`${base}/leads/export?format=csv&status=closed&created_from=2026-11-01`, token)
    const copy = await timeCopy(url)
    const rate = (seconds: number) => Math.round(copy.rows / seconds).toLocaleString('en')
    console.log(`leads: ${copy.rows.toLocaleString('en')}`)
    console.log(
      `COPY TO STDOUT: ${copy.seconds.toFixed(1)} s, ${rate(copy.seconds)} rows/s, ${(copy.bytes / 2 ** 20).toFixed(0)} MB`,
    )
    const report = (name: string, result: { seconds: number; bytes: number }) =>
      console.log(
        `${name}: ${result.seconds.toFixed(1)} s, ${rate(result.seconds)} rows/s, ${(result.bytes / 2 ** 20).toFixed(0)} MB, ratio to COPY ${(copy.seconds / result.seconds).toFixed(2)}; uptime ${uptime()}`,
      )
    report('CSV export', await timeDownload(`${base}/leads/export?format=csv`, token))
    report('XLSX export', await timeDownload(`${base}/leads/export?format=xlsx`, token))
  })

  console.log(`uptime after: ${uptime()}`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
