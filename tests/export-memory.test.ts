import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { get, type IncomingMessage } from 'node:http'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { migrate } from '../src/db/migrate.js'
import { ADMIN, SERVER_URL, type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { type ServerProcess, startServer } from './helpers/server.js'

const LEADS = 200_000
const MAX_GROWTH_BYTES = 100 * 1024 * 1024

/** 200,000 leads of 1,000 clients, made by PostgreSQL in one statement each. */
const SEED = `
  insert into clients (client_type, contact_name, phone)
    select 'natural', 'Cliente ' || i, '+58412' || lpad(i::text, 7, '0') from generate_series(1, 1000) as i;
  insert into leads (client_id, channel, status, created_at)
    select (i % 1000) + 1, 'web', 'new', now() - i * interval '1 second'
    from generate_series(1, ${LEADS}) as i;`

async function seed(environment: ServerEnvironment): Promise<void> {
  if (SERVER_URL) {
    const url = environment.env.DATABASE_URL as string
    await migrate(url)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    await client.query(SEED).finally(() => client.end())
    return
  }
  // The server's own data directory, filled before it starts: it is its only owner afterwards.
  const embedded = await startEmbeddedPostgres({ home: environment.dataDir })
  const client = new pg.Client({ connectionString: embedded.url })
  await client.connect()
  await client.query(SEED).finally(() => client.end())
  await embedded.close()
}

/** The server process's resident memory, as the kernel counts it. */
async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kilobytes = Number(status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1])
  return kilobytes * 1024
}

describe('exports at scale', () => {
  let environment: ServerEnvironment
  let server: ServerProcess
  let token: string

  const api = async (path: string) => {
    const response = await checkedFetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(response.status, 200, path)
    return (await response.json()) as { items: unknown[] }
  }
  const exportAudits = async () =>
    (await api('/audit-logs?action=export&table_name=leads&limit=200')).items as Array<{
      new_values: { row_count: number; completed: boolean; format: string }
    }>
  const open = (path: string) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      get(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } }, resolve).on('error', reject)
    })

  before(async () => {
    environment = await serverEnvironment()
    await seed(environment)
    // V8 lets its heap grow lazily to a multiple of what is live before collecting; a cap makes
    // resident memory follow what the export keeps rather than when V8 chooses to collect. An
    // export that held its rows would run out of heap here and fail.
    server = await startServer({ ...environment.env, NODE_OPTIONS: '--max-old-space-size=128' })
    const login = await checkedFetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
    })
    token = ((await login.json()) as { access_token: string }).access_token
  })
  after(async () => {
    await server?.stop()
    await environment?.cleanup()
  })

  for (const format of ['csv', 'xlsx'] as const) {
    it(`streams ${LEADS.toLocaleString('en')} leads as ${format} with flat memory, answering before the last row is read`, async () => {
      // A quarter of the rows first: the modules load and the heap reaches its working size. Memory
      // that grew with the number of rows would then go on growing through the whole export.
      const quarter = new Date(Date.now() - (LEADS / 4) * 1000).toISOString()
      await (
        await checkedFetch(`${server.url}/leads/export?format=${format}&created_from=${quarter}`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).arrayBuffer()
      const pid = server.child.pid as number
      const baseline = await residentBytes(pid)
      let peak = baseline
      const sampler = setInterval(async () => {
        peak = Math.max(peak, await residentBytes(pid).catch(() => 0))
      }, 25)
      try {
        const auditsBefore = (await exportAudits()).length
        const response = await open(`/leads/export?format=${format}`)
        assert.equal(response.statusCode, 200)
        let bytes = 0
        let lines = 0
        let firstChunk = true
        for await (const chunk of response as AsyncIterable<Buffer>) {
          if (firstChunk) {
            firstChunk = false
            // The export's audit row is written once its last row is sent: none yet.
            assert.equal((await exportAudits()).length, auditsBefore, 'answering began before the export finished')
          }
          bytes += chunk.length
          if (format === 'csv') for (const byte of chunk) if (byte === 10) lines += 1
        }
        if (format === 'csv') assert.equal(lines, LEADS + 1)
        assert.ok(bytes > 1_000_000)
        // The audit row follows the last byte: wait for it (bounded).
        let audits = await exportAudits()
        for (let attempt = 0; attempt < 50 && audits.length === auditsBefore; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 100))
          audits = await exportAudits()
        }
        const audit = audits[0]
        assert.deepEqual(
          {
            rows: audit?.new_values.row_count,
            completed: audit?.new_values.completed,
            format: audit?.new_values.format,
          },
          { rows: LEADS, completed: true, format },
        )
      } finally {
        clearInterval(sampler)
      }
      const growth = peak - baseline
      console.log(
        `${format}: resident memory ${(baseline / 2 ** 20).toFixed(0)} MB, growth ${(growth / 2 ** 20).toFixed(1)} MB`,
      )
      assert.ok(growth < MAX_GROWTH_BYTES, `resident memory grew by ${(growth / 2 ** 20).toFixed(1)} MB`)
    })
  }

  it('stops reading when the client goes away', async () => {
    const response = await open('/leads/export?format=csv')
    await new Promise((resolve) => response.once('data', resolve))
    response.destroy()
    let audit: Awaited<ReturnType<typeof exportAudits>>[number] | undefined
    for (let attempt = 0; attempt < 100 && !audit; attempt++) {
      audit = (await exportAudits()).find((row) => row.new_values.completed === false)
      if (!audit) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.ok(audit, 'the abandoned export is audited as not completed')
    assert.ok(audit.new_values.row_count < LEADS, `stopped after ${audit.new_values.row_count} rows`)
  })
})
