/** `npm run worker`: the background jobs alone, without the HTTP API (run `npm start` with WORKERS=false beside it). */
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { ConfigError, loadConfig } from './config.js'
import { migrate } from './db/migrate.js'
import { startWorkers } from './jobs/worker.js'
import { metricsScraper } from './metrics/database.js'
import { startMetricsListener } from './metrics/listener.js'
import { openConfiguredDatabase } from './runtime.js'

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(error.message)
  process.exit(1)
}

const log = pino({ level: config.logLevel, redact: { paths: ['*.secret'], censor: '[redacted]' } })
const database = await openConfiguredDatabase(config, {
  onPoolError: (error) => log.warn({ err: { message: error.message } }, 'database connection lost'),
})
if (config.migrateOnStart) await migrate(database.url)
const workers = startWorkers(database.handle.db, config, log.child({ component: 'workers' }))
log.info('workers started')
// The jobs' counters live in this process: METRICS_PORT serves them (and the backlog) here too.
const metrics =
  config.metrics.port === undefined
    ? undefined
    : await startMetricsListener(metricsScraper(database.handle.db, database.handle.pool), {
        host: config.host,
        port: config.metrics.port,
      })

closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) log.error({ err: { type: err.name, message: err.message } }, 'shutting down after an error')
  else log.info({ signal }, 'shutting down: finishing the jobs in hand')
  await Promise.all([workers.stop(), metrics?.close()])
  await database.close()
})
