import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { type ServerProcess, startServer } from './helpers/server.js'
import { xlsxOfStrings } from './helpers/zip.js'

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
const IDLE_TIMEOUT_MS = 1000
const MAX_INFLATED_BYTES = 5 * 1024 * 1024

interface Answer {
  status: number
  body: string
  ms: number
}

/** A real HTTP exchange with the server process: an import's body may be sent a piece at a time. */
describe('import limits on a listening server', () => {
  let environment: ServerEnvironment
  let server: ServerProcess
  let token: string

  const call = async (path: string, init: RequestInit = {}): Promise<Answer> => {
    const started = Date.now()
    const response = await fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...init.headers },
      signal: AbortSignal.timeout(20_000),
    })
    return { status: response.status, body: await response.text(), ms: Date.now() - started }
  }
  const clientCount = async () => JSON.parse((await call('/clients?limit=1')).body).total as number

  /** POSTs the pieces with a pause before each, and resolves with the answer. */
  function trickle(path: string, headers: Record<string, string>, pieces: string[], pauseMs: number): Promise<Answer> {
    const started = Date.now()
    const url = new URL(path, server.url)
    return new Promise<Answer>((resolve, reject) => {
      const outgoing = request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, ...headers } })
      outgoing.on('response', (response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString()
        })
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body, ms: Date.now() - started }))
      })
      outgoing.on('error', reject)
      outgoing.setTimeout(30_000, () => outgoing.destroy(new Error('no answer within 30 s')))
      ;(async () => {
        for (const piece of pieces) {
          await sleep(pauseMs)
          if (!outgoing.destroyed) outgoing.write(piece)
        }
        if (headers['content-length'] === undefined) outgoing.end()
      })().catch(reject)
    })
  }

  before(async () => {
    environment = await serverEnvironment()
    server = await startServer({
      ...environment.env,
      UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
      UPLOAD_MAX_INFLATED_BYTES: String(MAX_INFLATED_BYTES),
    })
    const login = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin123' }),
    })
    assert.equal(login.status, 200, await login.clone().text())
    token = ((await login.json()) as { access_token: string }).access_token
  })

  after(async () => {
    await server?.stop()
    await environment?.cleanup()
  })

  it('answers 413 naming the limit for an XLSX that unpacks past it, and keeps answering', async () => {
    // 6 MB of shared strings packed into a few kilobytes.
    const bomb = xlsxOfStrings(['phone', 'a'.repeat(6 * 1024 * 1024)])
    assert.ok(bomb.length < 64 * 1024)
    const before = await clientCount()
    const answer = await call('/clients/import?dry_run=true', {
      method: 'POST',
      headers: { 'content-type': XLSX },
      body: bomb,
    })
    assert.equal(answer.status, 413, answer.body)
    const problem = JSON.parse(answer.body)
    assert.equal(problem.code, 'file_too_large')
    assert.match(problem.detail, /unpacks to more than 5 MB/)
    // The limit is on all the entries together: two halves of it, each under it, are refused too.
    const halves = xlsxOfStrings(['phone', 'b'.repeat(3 * 1024 * 1024), 'c'.repeat(3 * 1024 * 1024)])
    const together = await call('/leads/import', { method: 'POST', headers: { 'content-type': XLSX }, body: halves })
    assert.equal(together.status, 413, together.body)
    assert.equal((await call('/ready')).status, 200)
    assert.equal(await clientCount(), before)

    const fine = xlsxOfStrings(['phone', 'nombre', '04141239876'])
    const small = await call('/clients/import?dry_run=true', {
      method: 'POST',
      headers: { 'content-type': XLSX },
      body: fine,
    })
    assert.equal(small.status, 200, small.body)
  })

  it('keeps /ready and GET /clients answering while an upload trickles in', async () => {
    const pieces = [
      'nombre,telefono\n',
      ...Array.from({ length: 12 }, (_, index) => `Lento ${index},0414555${String(index).padStart(4, '0')}\n`),
    ]
    const before = await clientCount()
    const uploading = trickle('/clients/import', { 'content-type': 'text/csv' }, pieces, 250)
    const slowest = { ready: 0, clients: 0 }
    let polls = 0
    const deadline = Date.now() + 2500
    while (Date.now() < deadline) {
      const ready = await call('/ready')
      const clients = await call('/clients?limit=5')
      assert.equal(ready.status, 200, ready.body)
      assert.equal(clients.status, 200, clients.body)
      slowest.ready = Math.max(slowest.ready, ready.ms)
      slowest.clients = Math.max(slowest.clients, clients.ms)
      polls += 1
      await sleep(100)
    }
    assert.ok(polls >= 5)
    assert.ok(slowest.ready < 1000 && slowest.clients < 1000, JSON.stringify(slowest))
    const answer = await uploading
    assert.equal(answer.status, 200, answer.body)
    assert.equal(JSON.parse(answer.body).created, 12)
    assert.equal(await clientCount(), before + 12)
  })

  it('answers 408 to an upload that stops arriving, writing nothing', async () => {
    const before = await clientCount()
    const body = 'nombre,telefono\nParado,04145550999\n'
    const answer = await trickle(
      '/clients/import',
      { 'content-type': 'text/csv', 'content-length': String(body.length + 1000) },
      [body],
      10,
    )
    assert.equal(answer.status, 408, answer.body)
    assert.ok(answer.ms >= IDLE_TIMEOUT_MS && answer.ms < IDLE_TIMEOUT_MS + 5000, String(answer.ms))
    const problem = JSON.parse(answer.body)
    assert.equal(problem.code, 'request_timeout')
    assert.match(problem.detail, /nothing arrived for 1 s/)
    assert.equal((await call('/ready')).status, 200)
    assert.equal(await clientCount(), before)
  })

  it('answers 400 naming the row to a CSV with a quote inside a field, and logs no cell', async () => {
    const secret = 'Cliente-Reservado-7731'
    const file = `nombre,telefono\nAna,04145550101\n${secret} "la jefa",04145550102\n`
    const answer = await call('/clients/import', {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: file,
    })
    assert.equal(answer.status, 400, answer.body)
    const problem = JSON.parse(answer.body)
    assert.equal(problem.code, 'validation_failed')
    assert.equal(problem.errors[0].field, 'file')
    assert.match(problem.errors[0].message, /row 3 has a double quote inside a field/)
    assert.doesNotMatch(answer.body, new RegExp(secret))
    await sleep(200)
    assert.doesNotMatch(server.output(), new RegExp(secret))
  })
})
