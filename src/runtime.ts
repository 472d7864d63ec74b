import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { type Config, embeddedDataDir, resolveJwtSecret } from './config.js'
import { type DatabaseHandle, openDatabase } from './db/database.js'
import { type EmbeddedPostgres, startEmbeddedPostgres } from './db/embedded.js'
import { migrate } from './db/migrate.js'
import { startWorkers, type Workers } from './jobs/worker.js'
import { ensureFirstAdmin } from './users/bootstrap.js'

export interface DatabaseRuntime {
  url: string
  handle: DatabaseHandle
  embedded: EmbeddedPostgres | undefined
  close(): Promise<void>
}

/**
 * The database the config names, or the embedded one under DATA_DIR. Both are then used
 * through the same `pg` pool and Kysely; the embedded one gets a single connection, since it
 * is one connection underneath and two of ours waiting on each other would never finish.
 */
export async function openConfiguredDatabase(
  config: Config,
  options: { onPoolError?: (error: Error) => void; embedded?: EmbeddedPostgres } = {},
): Promise<DatabaseRuntime> {
  const embedded =
    options.embedded ??
    (config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: embeddedDataDir(config) }))
  const url = embedded?.url ?? (config.databaseUrl as string)
  const handle = openDatabase({
    url,
    poolSize: embedded ? 1 : config.dbPoolSize,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    onPoolError: options.onPoolError,
  })
  return {
    url,
    handle,
    embedded,
    async close() {
      await handle.close()
      // Only close the embedded server this runtime started.
      if (embedded && !options.embedded) await embedded.close()
    },
  }
}

export interface Runtime {
  app: FastifyInstance
  database: DatabaseRuntime
  close(): Promise<void>
}

/** Everything `npm start` does before listening: database, migrations, first admin, app, workers (unless WORKERS=false). */
export async function startRuntime(config: Config, options: { embedded?: EmbeddedPostgres } = {}): Promise<Runtime> {
  const jwtSecret = await resolveJwtSecret(config)
  let app: FastifyInstance | undefined
  const database = await openConfiguredDatabase(config, {
    embedded: options.embedded,
    onPoolError: (error) => app?.log.warn({ err: { message: error.message } }, 'database connection lost'),
  })
  try {
    if (config.migrateOnStart) await migrate(database.url)
    app = await buildApp({ config, db: database.handle.db, jwtSecret })
    if (await ensureFirstAdmin(database.handle.db, config.adminPassword)) {
      if (config.adminPasswordIsDefault) {
        app.log.warn('Created the user "admin" with the default password admin123: change it now')
      } else {
        app.log.info('Created the user "admin" with ADMIN_PASSWORD')
      }
    }
  } catch (error) {
    await app?.close()
    await database.close()
    throw error
  }
  const started = app
  const workers: Workers | undefined = config.workers
    ? startWorkers(database.handle.db, config, started.log.child({ component: 'workers' }))
    : undefined
  return {
    app: started,
    database,
    async close() {
      // Stop taking connections and finish the requests and jobs in hand, then let go of the database.
      await Promise.all([started.close(), workers?.stop()])
      await database.close()
    },
  }
}
