import type { Config } from '../config.js'
import type { Database } from '../db/database.js'
import { StartupError } from '../errors/startup.js'
import { openConfiguredDatabase } from '../runtime.js'

/**
 * Runs an operator's command on the configured database (the embedded one through the running
 * server when there is one) and closes it; a startup problem is told in one line, exit code 1.
 */
export async function withDatabase(
  config: Config,
  run: (database: { url: string; db: Database }) => Promise<void>,
): Promise<void> {
  try {
    const database = await openConfiguredDatabase(config, { shareRunningServer: true })
    try {
      await run({ url: database.url, db: database.handle.db })
    } finally {
      await database.close()
    }
  } catch (error) {
    if (!(error instanceof StartupError)) throw error
    console.error(error.message)
    process.exitCode = 1
  }
}
