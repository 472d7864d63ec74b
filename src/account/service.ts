import { sql } from 'kysely'
import { verifyPassword } from '../auth/passwords.js'
import { clearUserFailures, releaseAttempt, reserveAttempt, type ThrottleLimits } from '../auth/throttle.js'
import type { Database } from '../db/database.js'
import type { UserRole } from '../db/types.js'
import { TooManyRequestsError, UnauthorizedError, ValidationError } from '../errors/domain.js'
import { loginFailures } from '../metrics/registry.js'

export interface LoginResult {
  userId: number
  role: UserRole
  tokenVersion: number
}

/**
 * A wrong password, an unknown user and a deactivated user all get the same error after the
 * same work (one argon2 verification), so the answer tells nothing about which it was.
 */
export async function login(
  db: Database,
  credentials: { username: string; password: string },
  address: string,
  limits: ThrottleLimits,
): Promise<LoginResult> {
  const username = credentials.username.trim().toLowerCase()
  const keys = { user: username, address }
  try {
    await reserveAttempt(db, keys, limits)
  } catch (error) {
    if (error instanceof TooManyRequestsError) loginFailures.inc({ reason: 'throttled' })
    throw error
  }
  const user = await db
    .selectFrom('users')
    .select(['id', 'role', 'is_active', 'password_hash', 'token_version'])
    .where('username', '=', username)
    .executeTakeFirst()
  const passwordMatches = await verifyPassword(user?.password_hash, credentials.password)
  if (!user || !passwordMatches || !user.is_active) {
    loginFailures.inc({ reason: 'invalid_credentials' })
    throw new UnauthorizedError('Invalid username or password', 'invalid_credentials')
  }
  await releaseAttempt(db, keys)
  await clearUserFailures(db, keys)
  // Bookkeeping, not a change made by anyone: no audit row, updated_at untouched.
  await db.updateTable('users').set({ last_login_at: sql`now()` }).where('id', '=', user.id).execute()
  return { userId: user.id, role: user.role, tokenVersion: user.token_version }
}

/** Guards a password change; wrong guesses count towards the login throttle of that user. */
export async function assertCurrentPassword(
  db: Database,
  user: { userId: number; username: string },
  password: string,
  address: string,
  limits: ThrottleLimits,
): Promise<void> {
  const keys = { user: user.username, address }
  await reserveAttempt(db, keys, limits)
  const row = await db.selectFrom('users').select('password_hash').where('id', '=', user.userId).executeTakeFirst()
  if (!(await verifyPassword(row?.password_hash, password))) {
    throw ValidationError.field('current_password', 'is not your current password')
  }
  await releaseAttempt(db, keys)
}
