import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { systemActor } from './auth/actor.js'
import { purgeExpiredLoginFailures } from './auth/login-failures-purge.js'
import { type Config, resolveJwtSecret } from './config.js'
import { type DatabaseHandle, openDatabase, waitForDatabase } from './db/database.js'
import { type EmbeddedPostgres, embeddedUrl, isServing, startEmbeddedPostgres } from './db/embedded.js'
import { migrate } from './db/migrate.js'
import { purgeOldEvents } from './events/retention.js'
import { purgeExpiredSubmissionCounts } from './forms/throttle.js'
import { purgeExpiredIdempotencyKeys } from './http/idempotency.js'
import { every, type Periodic } from './jobs/periodic.js'
import { startWorkers, type Workers } from './jobs/worker.js'
import { publishStaleLeads } from './leads/stale.js'
import { metricsScraper } from './metrics/database.js'
import { startMetricsListener } from './metrics/listener.js'
import { countHistoricResponses } from './pipeline/first-response.js'
import { undoAbandonedImports } from './spreadsheets/import-undo.js'
import { purgeExpiredTrash } from './trash/service.js'
import { ensureFirstAdmin } from './users/bootstrap.js'

// Expired throttling counters and idempotency keys are purged once per throttling window, and at least this often.
const MAX_PURGE_INTERVAL_SECONDS = 600
// Old events and the expired trash are purged hourly: their retention is counted in days.
const HOURLY_MS = 3_600_000
// An import left unfinished by a stopped process is undone within a minute of counting as abandoned.
const ABANDONED_IMPORT_CHECK_MS = 60_000
// A lead turned stale gets its lead.stale event within a minute.
const STALE_LEADS_CHECK_MS = 60_000
// First responses taken from history get their business seconds soon after start.
const HISTORIC_RESPONSES_CHECK_MS = 60_000

export interface DatabaseRuntime {
  url: string
  handle: DatabaseHandle
  embedded: EmbeddedPostgres | undefined
  close(): Promise<void>
}

export interface OpenDatabaseOptions {
  onPoolError?: (error: Error) => void
  embedded?: EmbeddedPostgres
  /** With the embedded database already served by a running server, use it through its socket. */
  shareRunningServer?: boolean
  log?: (message: string) => void
}

/**
 * The database the config names, or the embedded one under DATA_DIR. Both are then used
 * through the same `pg` pool and Kysely; the embedded one gets a single connection, since it
 * is one connection underneath and two of ours waiting on each other would never finish.
 */
export async function openConfiguredDatabase(
  config: Config,
  options: OpenDatabaseOptions = {},
): Promise<DatabaseRuntime> {
  const shared =
    !config.databaseUrl && !options.embedded && options.shareRunningServer && (await isServing(config.dataDir))
  // What the start is doing, for the person who runs it; LOG_LEVEL=silent silences it too.
  const log = options.log ?? (config.logLevel === 'silent' ? () => {} : (message: string) => console.error(message))
  const embedded =
    options.embedded ??
    (config.databaseUrl || shared
      ? undefined
      : await startEmbeddedPostgres({
          home: config.dataDir,
          onWait: log,
          onLockLost: (error) => {
            // Another process took the data folder over: writing on would corrupt it.
            log(`The lock on DATA_DIR was lost (${error.message}): stopping at once`)
            process.exit(1)
          },
        }))
  const url = embedded?.url ?? (shared ? embeddedUrl(config.dataDir) : (config.databaseUrl as string))
  const handle = openDatabase({
    url,
    poolSize: embedded || shared ? 1 : config.dbPoolSize,
    embedded: Boolean(embedded || shared),
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
  /** The METRICS_PORT listener, when configured. */
  metrics: FastifyInstance | undefined
  close(): Promise<void>
}

/** Everything `npm start` does before listening: database, migrations, first admin, app, purges, workers (unless WORKERS=false). */
export async function startRuntime(
  config: Config,
  options: { embedded?: EmbeddedPostgres; log?: (message: string) => void } = {},
): Promise<Runtime> {
  // What the start is doing, for the person who runs it; LOG_LEVEL=silent silences it too.
  const log = options.log ?? (config.logLevel === 'silent' ? () => {} : (message: string) => console.error(message))
  const jwtSecret = await resolveJwtSecret(config)
  let app: FastifyInstance | undefined
  if (!config.databaseUrl && !options.embedded) log(`Starting the embedded PostgreSQL in ${config.dataDir}…`)
  const database = await openConfiguredDatabase(config, {
    embedded: options.embedded,
    log,
    onPoolError: (error) => app?.log.warn({ err: { message: error.message } }, 'database connection lost'),
  })
  let housekeeping: Periodic[] = []
  let metrics: FastifyInstance | undefined
  try {
    await waitForDatabase({
      url: database.url,
      seconds: config.dbWaitSeconds,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      log,
    })
    if (config.migrateOnStart) await migrate(database.url, { log })
    app = await buildApp({ config, db: database.handle.db, jwtSecret, pool: database.handle.pool })
    if (config.metrics.port !== undefined) {
      metrics = await startMetricsListener(metricsScraper(database.handle.db, database.handle.pool), {
        host: config.host,
        port: config.metrics.port,
      })
    }
    if (await ensureFirstAdmin(database.handle.db, config.adminPassword, config.defaultLocale)) {
      if (config.adminPasswordIsDefault) {
        app.log.warn(
          'Created the user "admin" with the default password admin123: change it now (POST /auth/me/password, or ADMIN_PASSWORD=… npm run create-admin)',
        )
      } else {
        app.log.info('Created the user "admin" with ADMIN_PASSWORD')
      }
    }
    const logger = app.log
    const db = database.handle.db
    const warn = (what: string) => (error: Error) => logger.warn({ err: { message: error.message } }, `${what} failed`)
    const purgeIntervalMs = Math.min(config.login.windowSeconds, MAX_PURGE_INTERVAL_SECONDS) * 1000
    housekeeping = [
      every(
        purgeIntervalMs,
        () => purgeExpiredLoginFailures(db, config.login.windowSeconds),
        warn('purging expired login failures'),
      ),
      every(
        Math.min(config.forms.windowSeconds, MAX_PURGE_INTERVAL_SECONDS) * 1000,
        () => purgeExpiredSubmissionCounts(db, config.forms.windowSeconds),
        warn('purging expired form submission counts'),
      ),
      every(purgeIntervalMs, () => purgeExpiredIdempotencyKeys(db), warn('purging expired idempotency keys')),
      every(HOURLY_MS, () => purgeOldEvents(db, config.eventRetentionDays), warn('purging old events')),
      every(
        HOURLY_MS,
        () => purgeExpiredTrash(db, systemActor(), config.trashRetentionDays),
        warn('purging the expired trash'),
      ),
      every(
        ABANDONED_IMPORT_CHECK_MS,
        () => undoAbandonedImports(db, systemActor()),
        warn('undoing abandoned imports'),
      ),
      every(STALE_LEADS_CHECK_MS, () => publishStaleLeads(db), warn('publishing stale leads')),
      every(
        HISTORIC_RESPONSES_CHECK_MS,
        () => countHistoricResponses(db),
        warn('counting the business seconds of earlier first responses'),
      ),
    ]
  } catch (error) {
    await app?.close()
    await metrics?.close()
    await database.close()
    throw error
  }
  const started = app
  const startedHousekeeping = housekeeping
  const workers: Workers | undefined = config.workers
    ? startWorkers(database.handle.db, config, started.log.child({ component: 'workers' }))
    : undefined
  return {
    app: started,
    database,
    metrics,
    async close() {
      // Stop taking connections and finish the requests and jobs in flight, then let go of the database.
      await Promise.all([started.close(), metrics?.close(), workers?.stop()])
      await Promise.all(startedHousekeeping.map((task) => task.stop()))
      await database.close()
    },
  }
}
