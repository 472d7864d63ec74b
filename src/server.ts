import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.js'
import { startRuntime } from './runtime.js'

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(error.message)
  process.exit(1)
}

const runtime = await startRuntime(config)
const { app } = runtime

closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err: { type: err.name, message: err.message } }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await runtime.close()
})

await app.listen({ host: config.host, port: config.port })
