import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import closeWithGrace from 'close-with-grace'
import pino, { type Logger } from 'pino'
import { type Config, listeningUrl, loadConfig } from './config.js'
import { StartupError } from './errors/startup.js'
import { logDestination } from './logging.js'
import { type Runtime, startRuntime } from './runtime.js'

// One Ctrl-C reaches the server twice: from the terminal, and relayed by npm. Within this time a
// repeated signal is that same one; a later one is a person who does not want to wait.
const RELAYED_SIGNAL_MS = 2000

let runtime: Runtime
let config: Config
let logger: Logger
try {
  config = loadConfig()
  logger = pino({ level: config.logLevel }, logDestination(config.logFormat))
  // Before anything is written (the first admin, migrations), so a taken port changes nothing.
  await assertPortFree(config.host, config.port)
  runtime = await startRuntime(config, { log: (message) => logger.info(message) })
} catch (error) {
  // One line that says what to mend: a stack trace would only hide it (and may carry secrets).
  console.error(error instanceof StartupError ? error.message : `Cannot start: ${(error as Error).message}`)
  process.exit(1)
}
const { app } = runtime

// Errors and other signals as close-with-grace handles them; SIGINT and SIGTERM below, so that a relayed
// copy of the first one does not cut the graceful shutdown short.
const closer = closeWithGrace({ delay: 15_000, skip: ['SIGINT', 'SIGTERM'] }, async ({ signal, err }) => {
  if (err) app.log.error({ err: { type: err.name, message: err.message } }, 'shutting down after an error')
  else if (signal) app.log.info({ signal }, 'shutting down')
  await runtime.close()
  app.log.info('stopped')
})
let stopping: { signal: NodeJS.Signals; at: number } | undefined
function onStopSignal(signal: NodeJS.Signals) {
  if (stopping) {
    if (Date.now() - stopping.at < RELAYED_SIGNAL_MS) return
    app.log.error({ signal }, 'second signal: exiting without finishing the requests in flight')
    process.exit(1)
  }
  stopping = { signal, at: Date.now() }
  app.log.info({ signal }, 'shutting down')
  void closer.close()
}
process.on('SIGINT', onStopSignal)
process.on('SIGTERM', onStopSignal)

try {
  await app.listen({ host: config.host, port: config.port })
} catch (error) {
  console.error(`Cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`)
  await runtime.close()
  process.exit(1)
}
const base = listeningUrl(config.host, (app.server.address() as AddressInfo).port)
const urls = { api: base, docs: `${base}/docs`, dashboard: `${base}/dashboard` }
logger.info(urls, `Mini CRM API ready on ${urls.api} · documentation ${urls.docs} · dashboard ${urls.dashboard}`)

async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new StartupError(`PORT ${port} is taken on ${host} by another process: stop it or set PORT to a free one`),
        )
      } else {
        reject(new StartupError(`Cannot listen on ${host}:${port}: ${error.message}`))
      }
    })
    probe.listen({ host, port }, () => probe.close(() => resolve()))
  })
}
