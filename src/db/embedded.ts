import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { unaccent } from '@electric-sql/pglite/contrib/unaccent'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import lockfile from 'proper-lockfile'
import { StartupError } from '../errors/startup.js'
import { preparePrivateFolder } from './data-dir.js'

export interface EmbeddedPostgres {
  url: string
  /** The Unix socket the database answers on. */
  socketPath: string
  /** Stops answering on the socket (the data stays open): used to test an unreachable database. */
  stopServing(): Promise<void>
  resumeServing(): Promise<void>
  close(): Promise<void>
}

export interface EmbeddedOptions {
  /**
   * The folder that holds the data (`postgres/`), the socket and the lock: DATA_DIR. Omitted means
   * in memory, served from a private temporary folder.
   */
  home?: string
  /** Told when the lock on `home` could no longer be kept (a clock jump, the lock folder removed). */
  onLockLost?: (error: Error) => void
  /** Told while waiting for a lock left behind by a process that no longer answers. */
  onWait?: (message: string) => void
}

// The name PostgreSQL clients look for in a socket folder (`host=/folder`, port 5432).
const SOCKET_NAME = '.s.PGSQL.5432'
const LOCK_NAME = '.lock'
// The holder refreshes the lock every 2 s while its event loop is free; PGlite's WASM can hold that
// loop for seconds on a busy machine, so a lock counts as abandoned only after 20 s without a refresh.
const LOCK_STALE_MS = 20_000
const LOCK_UPDATE_MS = 2_000

/** Where the embedded database keeps its files inside DATA_DIR. */
export function embeddedDataDir(home: string): string {
  return join(home, 'postgres')
}

/** The URL of the embedded database served from `home`, for `pg` and Kysely. */
export function embeddedUrl(home: string): string {
  return `postgres://postgres:postgres@localhost/postgres?host=${encodeURIComponent(home)}`
}

/** True when a process serves the embedded database of `home` right now. */
export function isServing(home: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(join(home, SOCKET_NAME))
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * PostgreSQL compiled to WASM, served in-process on a Unix socket inside `home` (a folder only
 * this user may enter) so that `pg`, Kysely and dbmate talk to it as to any server, and no other
 * local user can. It is one connection underneath: the socket server queues the statements of its
 * clients one at a time. Two processes on one data folder would corrupt it, so `home` is locked
 * for as long as the database is open.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<EmbeddedPostgres> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'mini-crm-pglite-')))
  // The socket has no password: the folder around it is what keeps other local users out.
  await preparePrivateFolder(home)
  const unlock = options.home
    ? await lockDataDir(home, options)
    : async () => rm(home, { recursive: true, force: true })
  // A lock already lost (see onLockLost) has nothing left to release.
  const release = () => unlock().catch(() => {})
  const socketPath = join(home, SOCKET_NAME)
  let pglite: PGlite | undefined
  try {
    // Left behind by a process that was killed: nobody serves it, since we hold the lock.
    await rm(socketPath, { force: true })
    pglite = await PGlite.create({
      dataDir: options.home ? embeddedDataDir(home) : undefined,
      extensions: { pg_trgm, unaccent },
    })
    const db = pglite
    let server = await serve(db, socketPath)
    return {
      url: embeddedUrl(home),
      socketPath,
      async stopServing() {
        await server.stop()
      },
      async resumeServing() {
        server = await serve(db, socketPath)
      },
      async close() {
        try {
          await server.stop()
          await db.close()
          await rm(socketPath, { force: true })
        } finally {
          await release()
        }
      },
    }
  } catch (error) {
    await pglite?.close().catch(() => {})
    await release()
    throw error
  }
}

/** Takes DATA_DIR for this process alone; the function it answers gives it back. */
export async function lockDataDir(
  home: string,
  options: Pick<EmbeddedOptions, 'onLockLost' | 'onWait'> = {},
): Promise<() => Promise<void>> {
  const busy = () =>
    new StartupError(
      `DATA_DIR ${home} is in use by another process (a running server, or a script such as create-admin): stop it first`,
    )
  const lockOptions = {
    realpath: false,
    lockfilePath: join(home, LOCK_NAME),
    stale: LOCK_STALE_MS,
    update: LOCK_UPDATE_MS,
    onCompromised: (error: Error) => options.onLockLost?.(error),
  }
  // A live holder answers on the socket even when its event loop is busy; one that was killed does not.
  if (await isServing(home)) throw busy()
  try {
    return await lockfile.lock(home, lockOptions)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error
  }
  options.onWait?.(
    `DATA_DIR ${home} is locked by a process that does not answer; waiting up to ${LOCK_STALE_MS / 1000} s for its lock to go stale`,
  )
  try {
    return await lockfile.lock(home, {
      ...lockOptions,
      retries: { retries: LOCK_STALE_MS / 1000 + 5, minTimeout: 1000, maxTimeout: 1000, factor: 1 },
    })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw busy()
    throw error
  }
}

async function serve(pglite: PGlite, path: string): Promise<PGLiteSocketServer> {
  const server = new PGLiteSocketServer({ db: pglite, path, maxConnections: 64 })
  await server.start()
  await chmod(path, 0o600)
  return server
}
