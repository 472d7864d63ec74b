import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { unaccent } from '@electric-sql/pglite/contrib/unaccent'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export interface EmbeddedPostgres {
  url: string
  port: number
  /** Stops answering on the socket (the data stays open): used to test an unreachable database. */
  stopServing(): Promise<void>
  resumeServing(): Promise<void>
  close(): Promise<void>
}

export interface EmbeddedOptions {
  /** A directory for durable data; omitted means in memory. */
  dataDir?: string
  port?: number
}

/**
 * PostgreSQL compiled to WASM, served in-process on a loopback port so that `pg`, Kysely and
 * dbmate talk to it as to any server. It is one connection underneath: the socket server
 * queues the statements of its clients one at a time.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<EmbeddedPostgres> {
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true })
  const pglite = await PGlite.create({
    dataDir: options.dataDir,
    extensions: { pg_trgm, unaccent },
  })
  let server = await serve(pglite, options.port ?? 0)
  // getServerConn() answers host:port with the port the system picked.
  const port = Number(server.getServerConn().split(':').pop())
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    async stopServing() {
      await server.stop()
    },
    async resumeServing() {
      server = await serve(pglite, port)
    },
    async close() {
      await server.stop()
      await pglite.close()
    },
  }
}

async function serve(pglite: PGlite, port: number): Promise<PGLiteSocketServer> {
  const server = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port, maxConnections: 64 })
  await server.start()
  return server
}
