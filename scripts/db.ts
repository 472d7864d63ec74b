/**
 * dbmate against the configured database: DATABASE_URL, or the embedded one under DATA_DIR.
 * Usage: tsx scripts/db.ts migrate | rollback | status
 */
import { embeddedDataDir, loadConfig } from '../src/config.js'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { runDbmate } from '../src/db/migrate.js'

const commands: Record<string, string[]> = { migrate: ['migrate'], rollback: ['rollback'], status: ['status'] }
const args = commands[process.argv[2] ?? '']
if (!args) {
  console.error(`usage: tsx scripts/db.ts ${Object.keys(commands).join(' | ')}`)
  process.exit(2)
}

const config = loadConfig()
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: embeddedDataDir(config) })
try {
  process.stdout.write(await runDbmate(embedded?.url ?? (config.databaseUrl as string), args))
} catch (error) {
  const { stderr, message } = error as { stderr?: string; message: string }
  console.error(stderr || message)
  process.exitCode = 1
} finally {
  await embedded?.close()
}
