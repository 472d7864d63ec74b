/**
 * Creates an admin user, or resets the password of an existing one (and makes it an active admin).
 * Usage: npm run create-admin -- [username], or `node dist/cli/create-admin.js [username]` where only the
 * compiled JavaScript is (the Docker image). The password comes from ADMIN_PASSWORD or is asked for.
 * With the embedded database it goes through the running server's socket when the server runs, and
 * opens DATA_DIR itself (locking it) when it does not: the data folder never has two owners.
 */
import { stdin, stdout } from 'node:process'
import { createInterface } from 'node:readline/promises'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../auth/passwords.js'
import { loadConfig } from '../config.js'
import { migrate } from '../db/migrate.js'
import { createOrResetAdmin } from '../users/bootstrap.js'
import { USERNAME_PATTERN } from '../users/schemas.js'
import { withDatabase } from './with-database.js'

if (process.argv[2] === '--help' || process.argv[2] === '-h') {
  console.log(
    'usage: create-admin [username]   creates that admin (default: admin) or resets its password, role and activity;\n' +
      '       the password comes from ADMIN_PASSWORD, or is asked for',
  )
  process.exit(0)
}
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

await withDatabase(config, async ({ url, db }) => {
  await migrate(url)
  const outcome = await createOrResetAdmin(db, username, password)
  console.log(outcome === 'created' ? `Created admin ${username}` : `Reset the password of ${username}`)
})

async function ask(question: string): Promise<string> {
  const readline = createInterface({ input: stdin, output: stdout })
  try {
    return (await readline.question(question)).trim()
  } finally {
    readline.close()
  }
}
