/**
 * dbmate against the configured database: DATABASE_URL, or the embedded one under DATA_DIR
 * (through the running server when there is one).
 * Usage: npm run db:migrate | db:rollback | db:status, or `node dist/cli/db.js migrate | rollback | status`.
 */
import { loadConfig } from '../config.js'
import { runDbmate } from '../db/migrate.js'
import { StartupError } from '../errors/startup.js'
import { openConfiguredDatabase } from '../runtime.js'

const commands: Record<string, string[]> = { migrate: ['migrate'], rollback: ['rollback'], status: ['status'] }
const args = commands[process.argv[2] ?? '']
if (!args) {
  console.error(`usage: db ${Object.keys(commands).join(' | ')}`)
  process.exit(2)
}

try {
  const database = await openConfiguredDatabase(loadConfig(), { shareRunningServer: true })
  try {
    process.stdout.write(await runDbmate(database.url, args))
  } finally {
    await database.close()
  }
} catch (error) {
  if (!(error instanceof StartupError)) throw error
  console.error(error.message)
  process.exitCode = 1
}
