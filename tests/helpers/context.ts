import { createHash, randomBytes } from 'node:crypto'
import { cp, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import pg from 'pg'
import { type Config, loadConfig } from '../../src/config.js'
import type { Database } from '../../src/db/database.js'
import { type EmbeddedPostgres, embeddedDataDir, startEmbeddedPostgres } from '../../src/db/embedded.js'
import { MIGRATIONS_DIR, migrate } from '../../src/db/migrate.js'
import { type Runtime, startRuntime } from '../../src/runtime.js'
import { checkedInject } from './contract.js'

/**
 * The tests run on a real PostgreSQL server when TEST_DATABASE_URL names one (each test file gets
 * a database of its own, created and dropped here), and on the embedded one otherwise.
 */
export const SERVER_URL = process.env.TEST_DATABASE_URL
export const mode: 'server' | 'embedded' = SERVER_URL ? 'server' : 'embedded'

export const ADMIN = { username: 'admin', password: 'admin123' }

export interface TestUser {
  id: number
  username: string
  password: string
  role: 'admin' | 'sales' | 'management'
  token: string
}

export interface TestContext {
  app: FastifyInstance
  db: Database
  config: Config
  /** The URL of this test's database. */
  url: string
  embedded: EmbeddedPostgres | undefined
  adminToken: string
  /** app.inject, the response checked against the OpenAPI document (see contract.ts), as `as` does. */
  inject(options: InjectOptions): Promise<LightMyRequestResponse>
  /** app.inject unchecked, for a response that is off the document on purpose; `why` says which. */
  injectUnchecked(why: string, options: InjectOptions): Promise<LightMyRequestResponse>
  /** A request as the given token (or none), with a JSON body. */
  as(
    token: string | undefined,
    method: InjectOptions['method'],
    url: string,
    body?: unknown,
  ): Promise<LightMyRequestResponse>
  login(username: string, password: string): Promise<string>
  createUser(role: TestUser['role'], fields?: Record<string, unknown>): Promise<TestUser>
  auditRows(table: string, recordId?: number): Promise<AuditRow[]>
  /** Builds a new app on the same database, as a restarted process would. */
  restart(): Promise<void>
  close(): Promise<void>
}

export interface AuditRow {
  id: number
  table_name: string
  record_id: number
  action: string
  old_values: Record<string, unknown> | null
  new_values: Record<string, unknown> | null
  user_id: number | null
  username: string | null
  request_id: string | null
}

export function testConfig(overrides: Record<string, string> = {}, dataDir?: string): Config {
  return loadConfig(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      JWT_SECRET: randomBytes(32).toString('hex'),
      DATA_DIR: dataDir ?? join(tmpdir(), 'mini-crm-test-unused'),
      // Through PgBouncer, CI sets 0: the pooler refuses the setting at connect.
      ...(process.env.DB_STATEMENT_TIMEOUT_MS && { DB_STATEMENT_TIMEOUT_MS: process.env.DB_STATEMENT_TIMEOUT_MS }),
      ...overrides,
    },
    { dotenv: false },
  )
}

let userCounter = 0

export async function startTestContext(overrides: Record<string, string> = {}): Promise<TestContext> {
  const database = await createTestDatabase()
  const config = testConfig({ ...overrides, ...(database.url && { DATABASE_URL: database.url }) })
  let runtime: Runtime = await startRuntime(config, { embedded: database.embedded })
  const url = runtime.database.url

  const context: TestContext = {
    get app() {
      return runtime.app
    },
    get db() {
      return runtime.database.handle.db
    },
    config,
    url,
    embedded: database.embedded,
    adminToken: '',
    inject: (options) => checkedInject(runtime.app, options),
    injectUnchecked: (_why, options) => runtime.app.inject(options),
    as: (token, method, path, body) =>
      checkedInject(runtime.app, {
        method,
        url: path,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        ...(body !== undefined && { payload: body as never }),
      }),
    async login(username, password) {
      const response = await checkedInject(runtime.app, {
        method: 'POST',
        url: '/auth/login',
        payload: { username, password },
      })
      if (response.statusCode !== 200) throw new Error(`login ${username}: ${response.statusCode} ${response.body}`)
      return response.json().access_token as string
    },
    async createUser(role, fields = {}) {
      userCounter += 1
      const username = `${role}${userCounter}.${randomBytes(3).toString('hex')}`
      const password = `pw-${randomBytes(6).toString('hex')}`
      const response = await context.as(context.adminToken, 'POST', '/users', {
        username,
        password,
        role,
        ...fields,
      })
      if (response.statusCode !== 201) throw new Error(`create user: ${response.statusCode} ${response.body}`)
      const token = fields.is_active === false ? '' : await context.login(username, password)
      return { id: response.json().id, username, password, role, token }
    },
    async auditRows(table, recordId) {
      let query = context.db
        .selectFrom('audit_logs')
        .selectAll()
        .where('table_name', '=', table as never)
      if (recordId !== undefined) query = query.where('record_id', '=', recordId)
      return (await query.orderBy('id').execute()) as unknown as AuditRow[]
    },
    async restart() {
      await runtime.close()
      runtime = await startRuntime(config, { embedded: database.embedded })
    },
    async close() {
      await runtime.close()
      await database.drop()
    },
  }
  context.adminToken = await context.login(ADMIN.username, ADMIN.password)
  return context
}

interface TestDatabase {
  url: string | undefined
  embedded: EmbeddedPostgres | undefined
  drop(): Promise<void>
}

export interface ServerEnvironment {
  /** DATA_DIR, and DATABASE_URL on a database server. */
  env: Record<string, string>
  dataDir: string
  cleanup(): Promise<void>
}

/**
 * What a server process of its own needs: a DATA_DIR (for its JWT secret, and in embedded mode a
 * copy of the migrated template as its database) and, on a database server, a fresh database.
 */
export async function serverEnvironment(): Promise<ServerEnvironment> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mini-crm-server-'))
  const removeDataDir = () => rm(dataDir, { recursive: true, force: true })
  if (SERVER_URL) {
    const database = await createTestDatabase()
    return {
      env: { DATA_DIR: dataDir, DATABASE_URL: database.url as string },
      dataDir,
      cleanup: () => database.drop().finally(removeDataDir),
    }
  }
  await cp(await embeddedTemplatePath(), embeddedDataDir(dataDir), { recursive: true })
  return { env: { DATA_DIR: dataDir }, dataDir, cleanup: removeDataDir }
}

/** A fresh, migrated database: a new one on the server, or a copy of a migrated embedded template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (SERVER_URL) {
    const name = `crm_test_${process.pid}_${randomBytes(4).toString('hex')}`
    await withServer((client) => client.query(`create database ${name}`))
    const url = new URL(SERVER_URL)
    url.pathname = `/${name}`
    return {
      url: url.toString(),
      embedded: undefined,
      drop: () => withServer((client) => client.query(`drop database if exists ${name} with (force)`)).then(() => {}),
    }
  }
  const home = await mkdtemp(join(tmpdir(), 'mini-crm-pglite-'))
  await cp(await embeddedTemplatePath(), embeddedDataDir(home), { recursive: true })
  const embedded = await startEmbeddedPostgres({ home })
  return {
    url: undefined,
    embedded,
    async drop() {
      await embedded.close()
      await rm(home, { recursive: true, force: true })
    },
  }
}

async function withServer<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER_URL })
  await client.connect()
  try {
    return await run(client)
  } finally {
    await client.end()
  }
}

/**
 * A migrated embedded data directory, made once per set of migrations and copied by each test
 * file: creating one from nothing takes seconds, copying it a fraction of that.
 */
export async function embeddedTemplatePath(): Promise<string> {
  const files = (await readdir(MIGRATIONS_DIR)).sort()
  const hash = createHash('sha256')
  for (const file of files) hash.update(file).update(await readFile(join(MIGRATIONS_DIR, file)))
  const pgliteVersion = JSON.parse(
    await readFile(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8'),
  ).version
  hash.update(pgliteVersion)
  const templateDir = join(tmpdir(), `mini-crm-pglite-template-${hash.digest('hex').slice(0, 16)}`)
  try {
    await readFile(join(templateDir, 'PG_VERSION'))
    return templateDir
  } catch {
    // Not made yet: make it below.
  }
  const building = await mkdtemp(join(tmpdir(), 'mini-crm-pglite-building-'))
  const embedded = await startEmbeddedPostgres({ home: building })
  try {
    await migrate(embedded.url)
  } finally {
    await embedded.close()
  }
  try {
    await rename(embeddedDataDir(building), templateDir)
  } catch {
    // Another test file made it first.
  }
  await rm(building, { recursive: true, force: true })
  return templateDir
}

export async function countRows(db: Database, table: 'users' | 'audit_logs'): Promise<number> {
  const row = await db.selectFrom(table).select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow()
  return Number(row.count)
}

export function problemOf(response: LightMyRequestResponse) {
  return response.json() as {
    type: string
    title: string
    status: number
    code: string
    detail: string
    errors?: { field: string; message: string }[]
    [key: string]: unknown
  }
}
