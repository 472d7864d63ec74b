import type { Transaction } from 'kysely'
import type { DB } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'

/**
 * `userId` when it names an active user, else null. FOR SHARE makes a concurrent deactivation wait
 * for this transaction, or be seen once it committed: nothing is handed to an inactive user.
 */
export async function activeUserId(trx: Transaction<DB>, userId: number | null | undefined): Promise<number | null> {
  if (userId == null) return null
  const user = await trx
    .selectFrom('users')
    .select('id')
    .where('id', '=', userId)
    .where('is_active', '=', true)
    .forShare()
    .executeTakeFirst()
  return user?.id ?? null
}

/** A 400 naming `field` unless `userId` is an active user (an assignee, a form's owner). */
export async function assertActiveUser(trx: Transaction<DB>, userId: number, field: string): Promise<void> {
  if ((await activeUserId(trx, userId)) === null) throw ValidationError.field(field, `no active user has id ${userId}`)
}
