/** `npm run seed:demo`: the command line of demo.ts, on the configured database. */
import { parseArgs } from 'node:util'
import { loadConfig } from '../../src/config.js'
import { migrate } from '../../src/db/migrate.js'
import { openConfiguredDatabase } from '../../src/runtime.js'
import { type SeedOptions, seedDemo } from './demo.js'
import { DEMO_MANAGER, DEMO_PASSWORD } from './users.js'

function parseCount(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const cleaned = text.replaceAll('_', '')
  if (!/^\d+$/.test(cleaned)) throw new Error(`--${name} must be a whole number, not ${JSON.stringify(text)}`)
  return Number(cleaned)
}

async function main(): Promise<void> {
  let options: SeedOptions
  try {
    const { values } = parseArgs({
      options: {
        clients: { type: 'string' },
        leads: { type: 'string' },
        'sales-users': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
    if (values.help) {
      console.log('usage: npm run seed:demo -- [--clients N=500] [--leads M=2000] [--sales-users K=5]')
      return
    }
    options = {
      clients: parseCount('clients', values.clients, 500),
      leads: parseCount('leads', values.leads, 2000),
      salesUsers: parseCount('sales-users', values['sales-users'], 5),
    }
  } catch (error) {
    console.error((error as Error).message)
    console.error('usage: npm run seed:demo -- [--clients N=500] [--leads M=2000] [--sales-users K=5]')
    process.exitCode = 2
    return
  }
  const config = loadConfig()
  // A batch statement runs for seconds, longer than the API's statement timeout allows.
  const database = await openConfiguredDatabase({
    ...config,
    dbStatementTimeoutMs: Math.max(config.dbStatementTimeoutMs, 30 * 60_000),
  })
  try {
    await migrate(database.url)
    const result = await seedDemo(database.handle.db, options)
    console.log(
      `Demo users: ${DEMO_MANAGER} (management) and demo.sales1..${options.salesUsers} (sales), ` +
        `password ${DEMO_PASSWORD}; ${result.usersCreated} created now`,
    )
  } finally {
    await database.close()
  }
}

await main()
