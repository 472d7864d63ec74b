import assert from 'node:assert/strict'
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { defaultLogFormat } from '../src/logging.js'
import { createTestDatabase, SERVER_URL, type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { freePort, root, runTs, type ServerProcess, startServer } from './helpers/server.js'

const PASSWORD = 'Sup3r-Secret-Pw'
const STACK_LINE = /\n\s+at /

/** What a start that must fail wrote: one line saying why, no stack trace, no password. */
function assertOneLineFailure(result: { code: number | null; output: string }, reason: RegExp) {
  assert.notEqual(result.code, 0, result.output)
  assert.match(result.output, reason)
  assert.doesNotMatch(result.output, STACK_LINE, `a stack trace:\n${result.output}`)
  assert.ok(!result.output.includes(PASSWORD), `the password is in the output:\n${result.output}`)
}

describe('a fresh clone', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  let server: ServerProcess | undefined
  after(async () => {
    if (server) assert.equal(await server.stop(), 0)
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  it('starts with .env.example copied to .env, and logs no credential from a query string', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'mini-crm-clone-'))
    cleanups.push(() => rm(folder, { recursive: true, force: true }))
    await copyFile(join(root, '.env.example'), join(folder, '.env'))
    const environment: ServerEnvironment = await serverEnvironment()
    cleanups.push(() => environment.cleanup())
    server = await startServer(environment.env, { cwd: folder })

    const secrets = { access_token: 'leak-one', token: 'leak-two', key: 'leak-three', 'hub.verify_token': 'leak-4' }
    const query = new URLSearchParams({ ...secrets, q: 'visible' }).toString()
    await checkedFetch(`${server.url}/clients/search?${query}`)
    assert.equal((await checkedFetch(`${server.url}/ready`)).status, 200)
    const output = server.output()
    assert.match(output, /q=visible/, 'the request was logged')
    for (const secret of Object.values(secrets)) assert.ok(!output.includes(secret), `${secret} is in the log`)
    assert.match(output, /access_token=\[redacted\]/)
  })
})

describe('what a start says', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  async function start(env: Record<string, string>): Promise<{ url: string; output: string }> {
    const environment = await serverEnvironment()
    cleanups.push(() => environment.cleanup())
    const server = await startServer({ ...environment.env, ...env })
    cleanups.push(() => server.stop())
    const deadline = Date.now() + 10_000
    while (!server.output().includes('Mini CRM API ready') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return { url: server.url, output: server.output() }
  }

  it('logs JSON lines with LOG_FORMAT=json: what it is doing, then one line with the URLs', async () => {
    const { url, output } = await start({ LOG_FORMAT: 'json' })
    const entries = output
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string; api?: string; docs?: string; dashboard?: string })
    const messages = entries.map((entry) => entry.msg)
    if (SERVER_URL)
      assert.ok(
        messages.some((message) => /^Applying \d+ migrations…$/.test(message)),
        output,
      )
    else
      assert.ok(
        messages.some((message) => message.startsWith('Starting the embedded PostgreSQL in ')),
        output,
      )
    const ready = entries.filter((entry) => entry.msg.startsWith('Mini CRM API ready'))
    assert.equal(ready.length, 1, output)
    assert.equal(ready[0]?.msg, `Mini CRM API ready on ${url} · documentation ${url}/docs · dashboard ${url}/dashboard`)
    assert.deepEqual(
      { api: ready[0]?.api, docs: ready[0]?.docs, dashboard: ready[0]?.dashboard },
      { api: url, docs: `${url}/docs`, dashboard: `${url}/dashboard` },
    )
  })

  it('logs readable lines with LOG_FORMAT=pretty', async () => {
    const { url, output } = await start({ LOG_FORMAT: 'pretty' })
    const lines = output.trim().split('\n')
    assert.ok(
      lines.every((line) => !line.startsWith('{')),
      `a JSON line:\n${output}`,
    )
    assert.match(output, /^\[\d\d:\d\d:\d\d\] INFO: Mini CRM API ready on /m)
    assert.ok(output.includes(`ready on ${url} · documentation ${url}/docs · dashboard ${url}/dashboard`), output)
  })

  it('chooses pretty on a terminal and JSON otherwise, unless LOG_FORMAT says', () => {
    assert.equal(defaultLogFormat(true), 'pretty')
    assert.equal(defaultLogFormat(false), 'json')
    // The tests' stdout is a pipe.
    assert.equal(loadConfig({}, { dotenv: false }).logFormat, 'json')
    assert.equal(loadConfig({ LOG_FORMAT: 'pretty' }, { dotenv: false }).logFormat, 'pretty')
    assert.throws(() => loadConfig({ LOG_FORMAT: 'text' }, { dotenv: false }), /LOG_FORMAT must be one of pretty, json/)
  })
})

describe('a start that cannot succeed says why in one line', () => {
  it('names DATA_DIR when it is a file', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'mini-crm-file-'))
    const file = join(folder, 'data')
    await writeFile(file, 'not a folder')
    try {
      const result = await runTs('src/server.ts', { DATA_DIR: file })
      assertOneLineFailure(result, /DATA_DIR .*data is a file, not a folder/)
    } finally {
      await rm(folder, { recursive: true, force: true })
    }
  })

  it('names a taken PORT before touching the database', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const { port } = taken.address() as { port: number }
    const dataDir = await mkdtemp(join(tmpdir(), 'mini-crm-port-'))
    const database = SERVER_URL ? await createTestDatabase() : undefined
    try {
      const result = await runTs('src/server.ts', {
        PORT: String(port),
        DATA_DIR: dataDir,
        ...(database?.url && { DATABASE_URL: database.url }),
      })
      assertOneLineFailure(result, new RegExp(`PORT ${port} is taken on 127\\.0\\.0\\.1`))
      if (database?.url) {
        const client = new pg.Client({ connectionString: database.url })
        await client.connect()
        const { rows } = await client.query(`select to_regclass('users') as users`)
        await client.end()
        assert.equal(rows[0].users, null, 'no migration ran, no admin was created')
      } else {
        assert.deepEqual(await readdir(dataDir), [], 'no database was created')
      }
    } finally {
      await new Promise((resolve) => taken.close(resolve))
      await database?.drop()
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  it('waits for an unreachable database visibly, then gives up naming its host and port', async () => {
    const port = await freePort()
    const started = Date.now()
    const result = await runTs('src/server.ts', {
      DATABASE_URL: `postgres://crm:${PASSWORD}@127.0.0.1:${port}/crm`,
      DB_WAIT_SECONDS: '2',
      DATA_DIR: join(tmpdir(), 'mini-crm-unreachable'),
      JWT_SECRET: 'x'.repeat(32),
    })
    assertOneLineFailure(result, /did not answer within 2 s/)
    assert.match(result.output, new RegExp(`Waiting for the database crm at 127\\.0\\.0\\.1:${port}`))
    assert.ok(Date.now() - started < 30_000, 'it gave up in time')
  })

  it('refuses credentials the server rejects, without printing the password', async (t) => {
    if (!SERVER_URL) return t.skip('needs a PostgreSQL server (TEST_DATABASE_URL)')
    const url = new URL(SERVER_URL)
    url.username = 'crm_nobody'
    url.password = PASSWORD
    const result = await runTs('src/server.ts', {
      DATABASE_URL: url.toString(),
      DATA_DIR: join(tmpdir(), 'mini-crm-bad-password'),
      JWT_SECRET: 'x'.repeat(32),
    })
    assertOneLineFailure(result, new RegExp(`Cannot use the database .* at ${url.hostname}:${url.port}`))
  })

  it('reports a failed migration in one line that names the database, never its password', async (t) => {
    if (!SERVER_URL) return t.skip('needs a PostgreSQL server (TEST_DATABASE_URL)')
    const database = await createTestDatabase()
    try {
      // A table in the way of the first migration.
      const client = new pg.Client({ connectionString: database.url })
      await client.connect()
      await client.query('create table users (id int)')
      await client.end()
      const url = new URL(database.url as string)
      url.password = PASSWORD
      const result = await runTs('src/server.ts', {
        DATABASE_URL: url.toString(),
        DATA_DIR: join(tmpdir(), 'mini-crm-bad-migration'),
        JWT_SECRET: 'x'.repeat(32),
      })
      assertOneLineFailure(result, /dbmate migrate failed on the database crm_test_\w+ at [\w.]+:\d+: .*users/)
    } finally {
      await database.drop()
    }
  })
})

describe('configuration a newcomer writes', () => {
  it('reads an empty value as unset, as .env.example writes them', () => {
    const config = loadConfig({ DATABASE_URL: '', JWT_SECRET: '', PORT: '', TRUST_PROXY: '' }, { dotenv: false })
    assert.equal(config.databaseUrl, undefined)
    assert.equal(config.jwtSecret, undefined)
    assert.equal(config.port, 8000)
    assert.equal(config.trustProxy, false)
  })

  it('names the allowed values of a choice once', () => {
    assert.throws(
      () => loadConfig({ LOG_LEVEL: 'verbose' }, { dotenv: false }),
      (error: Error) => {
        assert.equal(
          error.message,
          'Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
        )
        return true
      },
    )
    assert.throws(
      () => loadConfig({ DEFAULT_LOCALE: 'fr' }, { dotenv: false }),
      (error: Error) => {
        assert.equal(error.message, 'Invalid configuration: DEFAULT_LOCALE must be one of es, en')
        return true
      },
    )
  })

  it('derives PUBLIC_URL from HOST and PORT unless it is set', () => {
    assert.equal(loadConfig({ PORT: '9123' }, { dotenv: false }).publicUrl, 'http://localhost:9123')
    assert.equal(loadConfig({ HOST: '0.0.0.0', PORT: '8080' }, { dotenv: false }).publicUrl, 'http://localhost:8080')
    assert.equal(loadConfig({ HOST: '::1', PORT: '8080' }, { dotenv: false }).publicUrl, 'http://[::1]:8080')
    assert.equal(
      loadConfig({ PORT: '9123', PUBLIC_URL: 'https://crm.example.com/' }, { dotenv: false }).publicUrl,
      'https://crm.example.com',
    )
  })
})
