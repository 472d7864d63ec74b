import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { sql } from 'kysely'
import { ConfigError, loadConfig } from '../src/config.js'
import { type Runtime, startRuntime } from '../src/runtime.js'
import {
  ADMIN,
  createTestDatabase,
  mode,
  serverEnvironment,
  startTestContext,
  type TestContext,
  testConfig,
} from './helpers/context.js'
import { checkedFetch, checkedInject } from './helpers/contract.js'
import { freePort, startServer } from './helpers/server.js'

const root = join(import.meta.dirname, '..')

/** A database this test may stop and start: the embedded server's socket, or a cluster of its own. */
async function stoppableDatabase() {
  if (mode === 'embedded') {
    const database = await createTestDatabase()
    const embedded = database.embedded as NonNullable<typeof database.embedded>
    return {
      configOverrides: {} as Record<string, string>,
      embedded,
      stop: () => embedded.stopServing(),
      start: () => embedded.resumeServing(),
      drop: () => database.drop(),
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'mini-crm-stoppable-pg-'))
  const port = await freePort()
  const script = join(root, 'scripts', 'throwaway-postgres.sh')
  const run = (...args: string[]) => promisify(execFile)('bash', [script, ...args])
  await run('start', dir, String(port))
  return {
    configOverrides: { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres` },
    embedded: undefined,
    stop: () => run('stop', dir).then(() => {}),
    start: () => run('start', dir, String(port)).then(() => {}),
    drop: async () => {
      await run('stop', dir).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

describe('a lost database', () => {
  let runtime: Runtime | undefined
  let database: Awaited<ReturnType<typeof stoppableDatabase>> | undefined
  after(async () => {
    await runtime?.close()
    await database?.drop()
  })

  it('answers 503 while the database is down and recovers by itself when it is back', async () => {
    database = await stoppableDatabase()
    runtime = await startRuntime(testConfig({ ...database.configOverrides, DB_CONNECT_TIMEOUT_MS: '1000' }), {
      embedded: database.embedded,
    })
    const { app } = runtime
    const login = await checkedInject(app, { method: 'POST', url: '/auth/login', payload: ADMIN })
    const token = login.json().access_token
    const listUsers = () =>
      checkedInject(app, { method: 'GET', url: '/users', headers: { authorization: `Bearer ${token}` } })
    assert.equal((await checkedInject(app, { method: 'GET', url: '/ready' })).statusCode, 200)

    await database.stop()
    const ready = await checkedInject(app, { method: 'GET', url: '/ready' })
    assert.equal(ready.statusCode, 503)
    assert.equal(ready.json().code, 'database_unavailable')
    assert.doesNotMatch(ready.body, /ECONNREFUSED|127\.0\.0\.1|stack/)
    const users = await listUsers()
    assert.equal(users.statusCode, 503)
    assert.equal((await checkedInject(app, { method: 'GET', url: '/health' })).statusCode, 200, 'the process lives on')

    await database.start()
    let status = 503
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      status = (await checkedInject(app, { method: 'GET', url: '/ready' })).statusCode
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.equal(status, 200)
    assert.equal((await listUsers()).statusCode, 200)
  })

  it('answers a stream of writes with 201 or a quick 503 while it goes away, and leaves nothing half-written', async () => {
    assert.ok(runtime && database)
    const { app } = runtime
    const token = (await checkedInject(app, { method: 'POST', url: '/auth/login', payload: ADMIN })).json().access_token
    const answers: Array<{ status: number; ms: number; id?: number }> = []
    let stopped = false
    let counter = 0
    // Four writers for a bounded time; the database stops under them, then comes back.
    const writer = async () => {
      const until = Date.now() + 6000
      while (Date.now() < until) {
        counter += 1
        const started = Date.now()
        const response = await checkedInject(app, {
          method: 'POST',
          url: '/clients',
          headers: { authorization: `Bearer ${token}` },
          payload: {
            contact_name: `Stream ${counter}`,
            phone: `+58412${String(5_000_000 + counter).padStart(7, '0')}`,
          },
        })
        answers.push({ status: response.statusCode, ms: Date.now() - started, id: response.json().id })
        if (response.statusCode === 503) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    const stopper = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 1500))
      await database.stop()
      stopped = true
      await new Promise((resolve) => setTimeout(resolve, 2000))
      await database.start()
    })()
    await Promise.all([writer(), writer(), writer(), writer(), stopper])
    assert.ok(stopped)

    const statuses = new Set(answers.map((answer) => answer.status))
    assert.ok(statuses.has(201) && statuses.has(503), `answers: ${[...statuses].join(', ')}`)
    assert.deepEqual(
      [...statuses].filter((code) => code !== 201 && code !== 503),
      [],
      'only 201 or 503',
    )
    const slowest = Math.max(...answers.map((answer) => answer.ms))
    assert.ok(slowest < 10_000, `a request hung for ${slowest} ms`)

    // Recovered without a restart, and every client has its audit row, every 201 its client.
    let ready = 503
    for (let attempt = 0; attempt < 50 && ready !== 200; attempt++) {
      ready = (await checkedInject(app, { method: 'GET', url: '/ready' })).statusCode
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.equal(ready, 200)
    const db = runtime.database.handle.db
    const clients = await db.selectFrom('clients').select('id').execute()
    const created = await db
      .selectFrom('audit_logs')
      .select('record_id')
      .where('table_name', '=', 'clients')
      .where('action', '=', 'create')
      .execute()
    assert.deepEqual(
      clients.map((client) => client.id).sort((a, b) => a - b),
      created.map((row) => row.record_id as number).sort((a, b) => a - b),
    )
    const answeredIds = answers.filter((answer) => answer.status === 201).map((answer) => answer.id)
    for (const id of answeredIds)
      assert.ok(
        clients.some((client) => client.id === id),
        `client ${id} was answered 201`,
      )
  })
})

describe('the server process', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  it('keeps its data and its tokens across a restart, and stops cleanly on SIGTERM', async () => {
    const environment = await serverEnvironment()
    cleanups.push(() => environment.cleanup())
    const { env, dataDir } = environment

    let server = await startServer(env)
    cleanups.push(async () => server.child.kill('SIGKILL'))
    const login = await checkedFetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=admin&password=admin123',
    })
    assert.equal(login.status, 200)
    const { access_token: token } = (await login.json()) as { access_token: string }
    const created = await checkedFetch(`${server.url}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'survivor', password: 'still-here', role: 'sales' }),
    })
    assert.equal(created.status, 201)
    const secretFile = await stat(join(dataDir, 'jwt-secret'))
    assert.equal(secretFile.mode & 0o777, 0o600, 'the generated secret is readable by its owner only')

    server.child.kill('SIGTERM')
    assert.equal(await server.exited, 0, 'SIGTERM exits 0')

    server = await startServer(env)
    const me = await checkedFetch(`${server.url}/users?q=survivor`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(me.status, 200, 'a token from before the restart still works')
    const body = (await me.json()) as { items: Array<{ username: string }> }
    assert.deepEqual(
      body.items.map((user) => user.username),
      ['survivor'],
    )
    server.child.kill('SIGTERM')
    assert.equal(await server.exited, 0)
  })

  it('refuses to start on a bad configuration value, naming it', async () => {
    await assert.rejects(startServer({ PORT: 'eighty', DATA_DIR: join(tmpdir(), 'never-used') }), /PORT/)
  })
})

describe('configuration', () => {
  it('names the variable that is wrong', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty' }, { dotenv: false }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError)
        assert.match(error.message, /PORT/)
        return true
      },
    )
    assert.throws(() => loadConfig({ DEFAULT_PHONE_REGION: 'venezuela' }, { dotenv: false }), /DEFAULT_PHONE_REGION/)
    assert.throws(() => loadConfig({ MIGRATE_ON_START: 'perhaps' }, { dotenv: false }), /MIGRATE_ON_START/)
    assert.throws(
      () => loadConfig({ DEFAULT_TIME_ZONE: 'Mars/Olympus' }, { dotenv: false }),
      /DEFAULT_TIME_ZONE Mars\/Olympus is not a known time zone/,
    )
    assert.equal(loadConfig({ DEFAULT_TIME_ZONE: 'Europe/Madrid' }, { dotenv: false }).defaultTimeZone, 'Europe/Madrid')
  })

  it('refuses production without a long JWT_SECRET or with the default admin password', () => {
    const strong = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), ADMIN_PASSWORD: 'a-real-admin-password' }
    assert.equal(loadConfig(strong, { dotenv: false }).env, 'production')
    assert.throws(() => loadConfig({ ...strong, JWT_SECRET: undefined }, { dotenv: false }), /JWT_SECRET/)
    assert.throws(() => loadConfig({ ...strong, JWT_SECRET: 'x'.repeat(31) }, { dotenv: false }), /JWT_SECRET/)
    assert.throws(() => loadConfig({ ...strong, ADMIN_PASSWORD: undefined }, { dotenv: false }), /ADMIN_PASSWORD/)
    assert.throws(() => loadConfig({ ...strong, ADMIN_PASSWORD: 'admin123' }, { dotenv: false }), /ADMIN_PASSWORD/)
  })

  it('takes TRUST_PROXY as a number of proxies or their addresses, and refuses true with what to write', () => {
    assert.equal(loadConfig({ TRUST_PROXY: '1' }, { dotenv: false }).trustProxy, 1)
    assert.deepEqual(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.10' }, { dotenv: false }).trustProxy, [
      '10.0.0.0/8',
      '192.168.1.10',
    ])
    assert.equal(loadConfig({ TRUST_PROXY: 'false' }, { dotenv: false }).trustProxy, false)
    assert.throws(
      () => loadConfig({ TRUST_PROXY: 'true' }, { dotenv: false }),
      /TRUST_PROXY=1.*TRUST_PROXY=10\.0\.0\.0\/8/,
    )
    assert.throws(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33' }, { dotenv: false }), /TRUST_PROXY 10\.0\.0\.0\/33/)
    assert.throws(() => loadConfig({ TRUST_PROXY: 'proxy.example' }, { dotenv: false }), /TRUST_PROXY/)
  })

  it('has the documented defaults', () => {
    const config = loadConfig({}, { dotenv: false })
    assert.equal(config.port, 8000)
    assert.equal(config.databaseUrl, undefined)
    assert.equal(config.migrateOnStart, true)
    assert.equal(config.defaultPhoneRegion, 'VE')
    assert.equal(config.accessTokenTtlSeconds, 3600)
    assert.deepEqual(config.corsOrigins, [])
  })
})

describe('a slow database', () => {
  let ctx: TestContext | undefined
  after(() => ctx?.close())

  it('answers 503 database_timeout when a statement outlives its time, and rolls it back', async () => {
    // No workers: at a 300 ms statement timeout on a busy machine a worker's statement can outlive the
    // pool's client-side query_timeout, after which that connection may be handed on mid-transaction.
    ctx = await startTestContext({ DB_STATEMENT_TIMEOUT_MS: '300', WORKERS: 'false' })
    await sql`create function slow_insert() returns trigger language plpgsql as $$ begin perform pg_sleep(4); return new; end $$`.execute(
      ctx.db,
    )
    await sql`create trigger slow_insert before insert on clients for each row execute function slow_insert()`.execute(
      ctx.db,
    )
    const response = await ctx.as(ctx.adminToken, 'POST', '/clients', { contact_name: 'Lenta', phone: '+584121110000' })
    assert.equal(response.statusCode, 503)
    assert.equal(response.json().code, 'database_timeout')
    await sql`drop trigger slow_insert on clients`.execute(ctx.db)
    const clients = await ctx.db.selectFrom('clients').select('id').execute()
    assert.equal(clients.length, 0)
    assert.equal((await ctx.auditRows('clients')).length, 0)
  })
})
