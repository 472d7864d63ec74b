import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { ConfigError, loadConfig } from '../src/config.js'
import { type Runtime, startRuntime } from '../src/runtime.js'
import { ADMIN, createTestDatabase, mode, serverEnvironment, testConfig } from './helpers/context.js'
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
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: ADMIN })
    const token = login.json().access_token
    const listUsers = () => app.inject({ method: 'GET', url: '/users', headers: { authorization: `Bearer ${token}` } })
    assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)

    await database.stop()
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(ready.statusCode, 503)
    assert.equal(ready.json().code, 'database_unavailable')
    assert.doesNotMatch(ready.body, /ECONNREFUSED|127\.0\.0\.1|stack/)
    const users = await listUsers()
    assert.equal(users.statusCode, 503)
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the process lives on')

    await database.start()
    let status = 503
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      status = (await app.inject({ method: 'GET', url: '/ready' })).statusCode
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.equal(status, 200)
    assert.equal((await listUsers()).statusCode, 200)
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
    const login = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=admin&password=admin123',
    })
    assert.equal(login.status, 200)
    const { access_token: token } = (await login.json()) as { access_token: string }
    const created = await fetch(`${server.url}/users`, {
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
    const me = await fetch(`${server.url}/users?q=survivor`, { headers: { authorization: `Bearer ${token}` } })
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
  })

  it('refuses production without a long JWT_SECRET or with the default admin password', () => {
    const strong = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), ADMIN_PASSWORD: 'a-real-admin-password' }
    assert.equal(loadConfig(strong, { dotenv: false }).env, 'production')
    assert.throws(() => loadConfig({ ...strong, JWT_SECRET: undefined }, { dotenv: false }), /JWT_SECRET/)
    assert.throws(() => loadConfig({ ...strong, JWT_SECRET: 'x'.repeat(31) }, { dotenv: false }), /JWT_SECRET/)
    assert.throws(() => loadConfig({ ...strong, ADMIN_PASSWORD: undefined }, { dotenv: false }), /ADMIN_PASSWORD/)
    assert.throws(() => loadConfig({ ...strong, ADMIN_PASSWORD: 'admin123' }, { dotenv: false }), /ADMIN_PASSWORD/)
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
