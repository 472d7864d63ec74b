/**
 * Starts over: deletes the embedded database and the generated JWT secret under DATA_DIR, so the
 * next `npm start` creates a fresh database with the first admin. Usage: npm run reset -- --yes
 */
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { loadConfig } from '../src/config.js'
import { embeddedDataDir, lockDataDir } from '../src/db/embedded.js'
import { StartupError } from '../src/errors/startup.js'

try {
  const config = loadConfig()
  if (config.databaseUrl) {
    throw new StartupError(
      'npm run reset deletes the embedded database only, and DATABASE_URL is set: drop and recreate that database yourself',
    )
  }
  const exists = await stat(config.dataDir).then(
    () => true,
    () => false,
  )
  if (!exists) {
    console.log(`Nothing to reset: DATA_DIR ${config.dataDir} does not exist`)
  } else if (!process.argv.includes('--yes')) {
    console.error(
      `This deletes every user, client, lead and audit row of the embedded database in ${config.dataDir}, and its generated JWT secret.\nRun again with --yes to do it: npm run reset -- --yes`,
    )
    process.exitCode = 1
  } else {
    // Never under a running server: the lock says whether one is.
    const release = await lockDataDir(config.dataDir, { onWait: (message) => console.error(message) })
    try {
      await rm(embeddedDataDir(config.dataDir), { recursive: true, force: true })
      await rm(join(config.dataDir, 'jwt-secret'), { force: true })
    } finally {
      await release()
    }
    console.log(`Deleted the embedded database in ${config.dataDir}: the next npm start begins afresh`)
  }
} catch (error) {
  if (!(error instanceof StartupError)) throw error
  console.error(error.message)
  process.exitCode = 1
}
