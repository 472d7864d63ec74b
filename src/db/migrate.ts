import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { resolveBinary } from 'dbmate'
import pg from 'pg'
import { StartupError } from '../errors/startup.js'
import { describeDatabase } from './describe.js'

const execFileAsync = promisify(execFile)

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'db', 'migrations')

/**
 * Runs dbmate asynchronously: with the embedded database the socket server shares this
 * event loop, so a synchronous child process would wait on itself forever. The URL goes through
 * the environment, where other users cannot read it (`ps` shows the arguments to everyone).
 */
export async function runDbmate(url: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(
      resolveBinary(),
      ['--migrations-dir', MIGRATIONS_DIR, '--no-dump-schema', ...args],
      { env: { ...process.env, DATABASE_URL: dbmateUrl(url) } },
    )
    return stdout
  } catch (error) {
    throw new StartupError(`dbmate ${args.join(' ')} failed on ${describeDatabase(url)}: ${dbmateReason(error, url)}`)
  }
}

/**
 * Applies the pending migrations, if any. Whether there are is asked first in one plain query: a
 * second process starting on a migrated database (another instance, `create-admin` beside the server)
 * then sends nothing more, where dbmate's session would interleave its statements with the running
 * server's on the embedded database, which serves every connection from one session.
 */
export async function migrate(url: string, options: { log?: (message: string) => void } = {}): Promise<string> {
  const pending = await pendingMigrations(url)
  if (pending === 0) return ''
  // The first start applies every migration, which takes a while on the embedded database: say so.
  options.log?.(`Applying ${pending} migration${pending === 1 ? '' : 's'}…`)
  return runDbmate(url, ['migrate'])
}

async function pendingMigrations(url: string): Promise<number> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql'))
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  try {
    await client.connect()
    const { rows } = await client.query<{ version: string }>('select version from schema_migrations')
    const applied = new Set(rows.map((row) => row.version))
    return files.filter((name) => !applied.has(name.split('_')[0] as string)).length
  } catch {
    // No schema_migrations yet, or no answer: dbmate creates it, or says what is wrong.
    return files.length
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** dbmate's own last words, without the URL or its password should they appear in them. */
function dbmateReason(error: unknown, url: string): string {
  const { stderr, message } = error as { stderr?: string; message: string }
  const lines = (stderr || message).trim().split('\n')
  let reason = lines.at(-1)?.replace(/^Error:\s*/, '') ?? 'unknown error'
  const { password } = new URL(url)
  reason = reason.replace(/postgres(ql)?:\/\/\S+/g, '[database URL]')
  if (password) reason = reason.replaceAll(decodeURIComponent(password), '[redacted]')
  return reason
}

/**
 * dbmate (lib/pq) asks for TLS unless told otherwise, which loopback and plain servers lack, and
 * names a socket folder `socket` where `pg` says `host`.
 */
function dbmateUrl(url: string): string {
  const parsed = new URL(url)
  const socketFolder = parsed.searchParams.get('host')
  if (socketFolder?.startsWith('/')) {
    parsed.searchParams.delete('host')
    parsed.searchParams.set('socket', socketFolder)
  }
  if (!parsed.searchParams.has('sslmode')) parsed.searchParams.set('sslmode', 'disable')
  return parsed.toString()
}
