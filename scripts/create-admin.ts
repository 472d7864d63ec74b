/**
 * Creates an admin user, or resets the password of an existing one (and makes it an active admin).
 * Usage: npm run create-admin -- [username]   (password from ADMIN_PASSWORD or asked for)
 * With the embedded database it goes through the running server's socket when the server runs, and
 * opens DATA_DIR itself (locking it) when it does not: the data folder never has two owners.
 */
import { stdin, stdout } from 'node:process'
import { createInterface } from 'node:readline/promises'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../src/auth/passwords.js'
import { loadConfig } from '../src/config.js'
import { migrate } from '../src/db/migrate.js'
import { StartupError } from '../src/errors/startup.js'
import { openConfiguredDatabase } from '../src/runtime.js'
import { createOrResetAdmin } from '../src/users/bootstrap.js'
import { USERNAME_PATTERN } from '../src/users/schemas.js'

const username = process.argv[2] ?? 'admin'
const config = loadConfig()
const password = process.env.ADMIN_PASSWORD ?? (await ask(`New password for ${username}: `))
if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
  console.error(`The password must have ${PASSWORD_MIN_LENGTH}–${PASSWORD_MAX_LENGTH} characters`)
  process.exit(1)
}
if (!new RegExp(USERNAME_PATTERN).test(username)) {
  console.error('The username must be 3–50 of a-z 0-9 . _ -')
  process.exit(1)
}

try {
  const database = await openConfiguredDatabase(config, { shareRunningServer: true })
  try {
    await migrate(database.url)
    const outcome = await createOrResetAdmin(database.handle.db, username, password)
    console.log(outcome === 'created' ? `Created admin ${username}` : `Reset the password of ${username}`)
  } finally {
    await database.close()
  }
} catch (error) {
  if (!(error instanceof StartupError)) throw error
  console.error(error.message)
  process.exitCode = 1
}

async function ask(question: string): Promise<string> {
  const readline = createInterface({ input: stdin, output: stdout })
  try {
    return (await readline.question(question)).trim()
  } finally {
    readline.close()
  }
}
