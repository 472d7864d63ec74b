import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { resolveBinary } from 'dbmate'

const execFileAsync = promisify(execFile)

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'db', 'migrations')

/**
 * Runs dbmate asynchronously: with the embedded database the socket server shares this
 * event loop, so a synchronous child process would wait on itself forever.
 */
export async function runDbmate(url: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(
    resolveBinary(),
    ['--url', withSslDisabled(url), '--migrations-dir', MIGRATIONS_DIR, '--no-dump-schema', ...args],
    { env: { ...process.env, DATABASE_URL: '' } },
  )
  return stdout
}

export function migrate(url: string): Promise<string> {
  return runDbmate(url, ['--wait', '--wait-timeout', '30s', 'migrate'])
}

/** dbmate (lib/pq) asks for TLS unless told otherwise; loopback and plain servers have none. */
function withSslDisabled(url: string): string {
  const parsed = new URL(url)
  if (!parsed.searchParams.has('sslmode')) parsed.searchParams.set('sslmode', 'disable')
  return parsed.toString()
}
