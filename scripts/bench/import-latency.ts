/**
 * `npm run bench:import-latency`: how long other requests wait while an import of N clients
 * (100,000) runs on the embedded database, whose one connection everything shares.
 *
 *   npm run bench:import-latency -- [--rows N]
 *
 * Starts the API as `npm start` does on a new embedded database, sends the file, and meanwhile asks
 * GET /ready and GET /clients one after the other, every 200 ms; prints the slowest answers and
 * how many took a second or more. Prints `uptime` too: the machine is shared.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startServer } from '../../tests/helpers/server.js'

function clientsCsv(rows: number): string {
  const lines = ['nombre,telefono,correo,empresa']
  for (let index = 0; index < rows; index++) {
    lines.push(`Cliente ${index},0412-${1_000_000 + index},cliente${index}@example.com,`)
  }
  return `${lines.join('\n')}\n`
}

async function timed(url: string, token: string): Promise<{ status: number; ms: number }> {
  const started = performance.now()
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  await response.arrayBuffer()
  return { status: response.status, ms: performance.now() - started }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' } } })
  const rows = Number(values.rows)
  const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim()
  console.log(`uptime before: ${uptime()}`)
  const dataDir = await mkdtemp(join(tmpdir(), 'crm-bench-import-latency-'))
  const server = await startServer(
    { DATA_DIR: dataDir, LOG_LEVEL: 'warn', ADMIN_PASSWORD: 'admin123' },
    { readyPath: '/ready', timeoutMs: 300_000 },
  )
  try {
    const login = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin123' }),
    })
    const token = ((await login.json()) as { access_token: string }).access_token
    const file = clientsCsv(rows)
    const started = performance.now()
    let done = false
    // node:http rather than fetch, whose answer must start within 300 s.
    const importing = new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const outgoing = request(`${server.url}/clients/import`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      })
      outgoing.on('response', (response) => {
        let text = ''
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString()
        })
        response.on('end', () => {
          done = true
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) })
        })
      })
      outgoing.on('error', reject)
      outgoing.end(file)
    })
    const samples: Record<string, number[]> = { '/ready': [], '/clients?limit=20': [] }
    let failures = 0
    while (!done) {
      for (const path of Object.keys(samples)) {
        const answer = await timed(`${server.url}${path}`, token)
        if (answer.status !== 200) failures += 1
        samples[path]?.push(answer.ms)
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const result = await importing
    const seconds = (performance.now() - started) / 1000
    console.log(
      `import of ${rows.toLocaleString('en')} clients (${(file.length / 2 ** 20).toFixed(1)} MB): ${result.status} in ${seconds.toFixed(1)} s, created ${result.body.created}, failed ${result.body.failed}`,
    )
    for (const [path, times] of Object.entries(samples)) {
      const sorted = [...times].sort((a, b) => a - b)
      const at = (share: number) =>
        (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))] ?? 0).toFixed(0)
      console.log(
        `GET ${path} during it: ${times.length} answers, median ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms, ${times.filter((ms) => ms >= 1000).length} at 1 s or more`,
      )
    }
    console.log(`answers other than 200: ${failures}`)
  } finally {
    await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
  console.log(`uptime after: ${uptime()}`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
