import { sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import type { AssignmentMode, DB } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'

export interface AssignmentRules {
  mode: AssignmentMode
  users: number[]
}

const RULES_ID = 1

async function readRules(db: Database, options: { lock: boolean }) {
  let query = db.selectFrom('assignment_rules').select(['mode', 'last_user_id']).where('id', '=', RULES_ID)
  if (options.lock) query = query.forUpdate()
  const rule = await query.executeTakeFirstOrThrow()
  const users = await db
    .selectFrom('assignment_rule_users')
    .innerJoin('users', 'users.id', 'assignment_rule_users.user_id')
    .select(['users.id', 'users.is_active'])
    .orderBy('assignment_rule_users.position')
    .execute()
  return { ...rule, users }
}

export async function getAssignmentRules(db: Database): Promise<AssignmentRules> {
  const rules = await readRules(db, { lock: false })
  return { mode: rules.mode, users: rules.users.map((user) => user.id) }
}

/** Replaces the rules; an unchanged set writes nothing. The rotation goes on from the last user served. */
export async function replaceAssignmentRules(
  trx: Transaction<DB>,
  actor: Actor,
  input: AssignmentRules,
): Promise<AssignmentRules> {
  const current = await readRules(trx, { lock: true })
  const before = { mode: current.mode, users: current.users.map((user) => user.id) }
  if (input.mode === 'round_robin' && input.users.length === 0) {
    throw ValidationError.field('users', 'round_robin needs at least one user')
  }
  const known = input.users.length
    ? await trx.selectFrom('users').select('id').where('id', 'in', input.users).forShare().execute()
    : []
  const knownIds = new Set(known.map((user) => user.id))
  const missing = input.users.findIndex((id) => !knownIds.has(id))
  if (missing !== -1) throw ValidationError.field(`users.${missing}`, `no user has id ${input.users[missing]}`)

  const changes = diff(
    { mode: before.mode, users: before.users.join(',') },
    { mode: input.mode, users: input.users.join(',') },
  )
  if (!changes) return before
  await trx.updateTable('assignment_rules').set({ mode: input.mode, updated_at: sql`now()` }).execute()
  await trx.deleteFrom('assignment_rule_users').execute()
  if (input.users.length > 0) {
    await trx
      .insertInto('assignment_rule_users')
      .values(input.users.map((userId, position) => ({ user_id: userId, position })))
      .execute()
  }
  const after = { mode: input.mode, users: input.users }
  const changed = Object.keys(changes.set) as Array<keyof AssignmentRules>
  await writeAudit(trx, actor, {
    table: 'assignment_rules',
    recordId: RULES_ID,
    action: 'update',
    oldValues: Object.fromEntries(changed.map((field) => [field, before[field]])),
    newValues: Object.fromEntries(changed.map((field) => [field, after[field]])),
  })
  return after
}

/**
 * The user the next inbound lead goes to, or null (mode none, or nobody active in the list). The
 * rules' row stays locked until the caller's transaction ends, so concurrent leads, on any
 * instance, each see the turn the previous one took.
 */
export async function nextAssignee(trx: Transaction<DB>): Promise<number | null> {
  const rules = await readRules(trx, { lock: true })
  if (rules.mode !== 'round_robin') return null
  const last = rules.users.findIndex((user) => user.id === rules.last_user_id)
  for (let step = 1; step <= rules.users.length; step++) {
    const user = rules.users[(last + step) % rules.users.length]
    if (!user?.is_active) continue
    await trx.updateTable('assignment_rules').set({ last_user_id: user.id }).execute()
    return user.id
  }
  return null
}
