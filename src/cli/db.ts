/**
 * dbmate against the configured database: DATABASE_URL, or the embedded one under DATA_DIR
 * (through the running server when there is one).
 * Usage: npm run db:migrate | db:rollback | db:status, or `node dist/cli/db.js migrate | rollback | status`.
 */
import { loadConfig } from '../config.js'
import { runDbmate } from '../db/migrate.js'
import { withDatabase } from './with-database.js'

const commands: Record<string, string[]> = { migrate: ['migrate'], rollback: ['rollback'], status: ['status'] }
const args = commands[process.argv[2] ?? '']
if (!args) {
  console.error(`usage: db ${Object.keys(commands).join(' | ')}`)
  process.exit(2)
}

await withDatabase(loadConfig(), async ({ url }) => {
  process.stdout.write(await runDbmate(url, args))
})
