/**
 * Fills the configured database (DATABASE_URL, or the embedded one under DATA_DIR) with demo data:
 * sales users and a manager, clients and leads, each with its `create` audit row. It appends to
 * whatever is there, so it can be run again.
 * Usage: npm run seed:demo -- [--clients N] [--leads M] [--sales-users K] (main.ts)
 * Every demo user's password is `demo-password`. Run it while the server is stopped when using the
 * embedded database: its data directory has one owner.
 *
 * The rows are made by PostgreSQL itself (generate_series, a batch a statement), so a million
 * clients and five million leads take minutes, not hours.
 */
import { sql } from 'kysely'
import type { Database } from '../../src/db/database.js'
import { countHistoricResponses } from '../../src/pipeline/first-response.js'
import { seedClients } from './clients.js'
import { seedLeads } from './leads.js'
import { seedUsers } from './users.js'

export interface SeedOptions {
  clients: number
  leads: number
  salesUsers: number
  /** Rows a statement; the defaults suit a real server. */
  clientBatchSize?: number
  leadBatchSize?: number
}

export interface SeedResult {
  usersCreated: number
  clientsAdded: number
  leadsAdded: number
  seconds: number
}

type Log = (message: string) => void

const DEFAULT_CLIENT_BATCH = 100_000
const DEFAULT_LEAD_BATCH = 250_000

/** Adds demo users, clients and leads; one statement a batch, run one after the other on one connection. */
export async function seedDemo(db: Database, options: SeedOptions, log: Log = console.log): Promise<SeedResult> {
  const started = performance.now()
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(1)
  return db.connection().execute(async (conn) => {
    const users = await seedUsers(conn, options.salesUsers)
    log(`users: ${users.created} created, sales ${users.salesIds.length}, manager ${users.managerId ?? 'none'}`)
    const creatorIds = [...users.salesIds, ...(users.managerId === undefined ? [] : [users.managerId])]

    const clientsAdded = await seedClients(conn, options.clients, options.clientBatchSize ?? DEFAULT_CLIENT_BATCH, {
      creatorIds,
      progress: (done) => log(`clients: ${format(done)} / ${format(options.clients)} (${elapsed()} s)`),
    })
    const leadsAdded = await seedLeads(conn, options.leads, options.leadBatchSize ?? DEFAULT_LEAD_BATCH, {
      salesIds: users.salesIds,
      creatorIds,
      progress: (done) => log(`leads: ${format(done)} / ${format(options.leads)} (${elapsed()} s)`),
    })
    // The seed writes first responses in SQL; their open-hours spans need the application's calendar.
    const counted = await countHistoricResponses(conn, 10_000)
    if (counted > 0) log(`response business seconds: ${format(counted)} (${elapsed()} s)`)
    if (clientsAdded + leadsAdded > 0) {
      await sql`analyze clients`.execute(conn)
      await sql`analyze leads`.execute(conn)
      await sql`analyze audit_logs`.execute(conn)
    }
    const seconds = (performance.now() - started) / 1000
    log(`done: ${users.created} users, ${format(clientsAdded)} clients, ${format(leadsAdded)} leads in ${elapsed()} s`)
    return { usersCreated: users.created, clientsAdded, leadsAdded, seconds }
  })
}

function format(value: number): string {
  return value.toLocaleString('en-US')
}
