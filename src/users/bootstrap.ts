import { sql } from 'kysely'
import { systemActor } from '../auth/actor.js'
import { hashPassword } from '../auth/passwords.js'
import type { Database } from '../db/database.js'
import type { UserLocale } from '../db/types.js'
import { createUser, updateUser } from './service.js'

/** On a database with no user at all, creates `admin` speaking `locale`. Returns true when it did. */
export async function ensureFirstAdmin(db: Database, password: string, locale: UserLocale): Promise<boolean> {
  const passwordHash = await hashPassword(password)
  return db.transaction().execute(async (trx) => {
    // Two instances starting together must not both create it.
    await sql`select pg_advisory_xact_lock(hashtext('users:first-admin'))`.execute(trx)
    const anyone = await trx.selectFrom('users').select('id').limit(1).executeTakeFirst()
    if (anyone) return false
    await createUser(trx, systemActor(), { username: 'admin', passwordHash, role: 'admin', locale })
    return true
  })
}

/**
 * Creates an admin, or gives an existing user of that name a new password, the admin role and
 * an active account: the way back in when the admin password is lost.
 */
export async function createOrResetAdmin(
  db: Database,
  username: string,
  password: string,
): Promise<'created' | 'reset'> {
  const passwordHash = await hashPassword(password)
  return db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('users')
      .select('id')
      .where('username', '=', username.toLowerCase())
      .executeTakeFirst()
    if (!existing) {
      await createUser(trx, systemActor(), { username, passwordHash, role: 'admin' })
      return 'created'
    }
    await updateUser(trx, systemActor(), existing.id, { passwordHash, role: 'admin', is_active: true })
    return 'reset'
  })
}
