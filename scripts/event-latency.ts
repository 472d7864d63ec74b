/**
 * Measures the delay from commit to webhook delivery: creates clients through the API, with a
 * webhook to a local receiver, and reports the median and p99 of (received at − occurred_at).
 * occurred_at is the transaction's start, so each figure includes the write itself: an upper bound.
 *
 *   [DATABASE_URL=postgres://...] npm run measure:events -- [--events 1000] [--concurrency 4] [--rate 0]
 *
 * --rate N paces the writes at N a second (0: as fast as the API takes them).
 *
 * Without DATABASE_URL it runs on the embedded database, in a throwaway DATA_DIR.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config.js'
import { startRuntime } from '../src/runtime.js'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '4' },
    rate: { type: 'string', default: '0' },
  },
})
const total = Number(values.events)
const concurrency = Number(values.concurrency)
const rate = Number(values.rate)

const delays: number[] = []
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', () => {
    const receivedAt = Date.now()
    const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { occurred_at: string }
    delays.push(receivedAt - Date.parse(event.occurred_at))
    response.end()
  })
})
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`

const dataDir = await mkdtemp(join(tmpdir(), 'mini-crm-latency-'))
const config = loadConfig(
  {
    ...process.env,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    JWT_SECRET: 'latency-measurement-secret',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  },
  { dotenv: false },
)
const runtime = await startRuntime(config)
const { app } = runtime
try {
  const login = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { username: 'admin', password: 'admin123' },
  })
  const headers = { authorization: `Bearer ${login.json().access_token}` }
  const webhook = await app.inject({
    method: 'POST',
    url: '/webhooks',
    headers,
    payload: { url: receiverUrl, events: ['client.created'] },
  })
  if (webhook.statusCode !== 201) throw new Error(`webhook: ${webhook.body}`)

  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const index = next++
        const due = started + (rate > 0 ? (index * 1000) / rate : 0)
        if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()))
        const created = await app.inject({
          method: 'POST',
          url: '/clients',
          headers,
          payload: { contact_name: `Latency ${index}`, phone: `+58412${1_000_000 + index}` },
        })
        if (created.statusCode !== 201) throw new Error(`client ${index}: ${created.body}`)
      }
    }),
  )
  const writesMs = performance.now() - started
  const deadline = Date.now() + 120_000
  while (delays.length < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  const sorted = [...delays].sort((a, b) => a - b)
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]
  console.log(
    JSON.stringify(
      {
        database: config.databaseUrl ? 'postgresql' : 'embedded',
        events: total,
        delivered: delays.length,
        concurrency,
        rate: rate || 'unpaced',
        writes_per_second: Math.round((total / writesMs) * 1000),
        delay_ms: { median: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.at(-1) },
        worker_poll_ms: config.workerPollMs,
      },
      null,
      2,
    ),
  )
} finally {
  await runtime.close()
  receiver.close()
  await rm(dataDir, { recursive: true, force: true })
}
