/**
 * Regenerates src/db/types.ts from the migrated schema: an embedded database is started,
 * migrated with dbmate, and read by kysely-codegen. `--verify` only checks that the file is current.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startEmbeddedPostgres } from '../src/db/embedded.js'
import { migrate } from '../src/db/migrate.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const embedded = await startEmbeddedPostgres()
try {
  await migrate(embedded.url)
  const args = [
    join(root, 'node_modules', 'kysely-codegen', 'dist', 'cli', 'bin.js'),
    '--dialect',
    'postgres',
    '--url',
    embedded.url,
    '--out-file',
    join(root, 'src', 'db', 'types.ts'),
    '--exclude-pattern',
    'schema_migrations',
    '--type-mapping',
    JSON.stringify({ int8: 'number', date: 'string' }),
    ...process.argv.slice(2),
  ]
  const { stdout, stderr } = await promisify(execFile)(process.execPath, args)
  process.stdout.write(stdout)
  process.stderr.write(stderr)
} finally {
  await embedded.close()
}
