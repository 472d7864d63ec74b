import { createServer } from 'node:net'
import closeWithGrace from 'close-with-grace'
import { type Config, loadConfig } from './config.js'
import { StartupError } from './errors/startup.js'
import { type Runtime, startRuntime } from './runtime.js'

let runtime: Runtime
let config: Config
try {
  config = loadConfig()
  // Before anything is written (the first admin, migrations), so a taken port changes nothing.
  await assertPortFree(config.host, config.port)
  runtime = await startRuntime(config)
} catch (error) {
  // One line that says what to mend: a stack trace would only hide it (and may carry secrets).
  console.error(error instanceof StartupError ? error.message : `Cannot start: ${(error as Error).message}`)
  process.exit(1)
}
const { app } = runtime

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err: { type: err.name, message: err.message } }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await runtime.close()
})

try {
  await app.listen({ host: config.host, port: config.port })
} catch (error) {
  console.error(`Cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`)
  await runtime.close()
  process.exit(1)
}

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
