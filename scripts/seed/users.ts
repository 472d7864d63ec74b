import { type Kysely, sql } from 'kysely'
import { hashPassword } from '../../src/auth/passwords.js'
import type { DB } from '../../src/db/types.js'
import { SALES_FULL_NAMES } from './words.js'

export const DEMO_PASSWORD = 'demo-password'
export const DEMO_MANAGER = 'demo.manager'
export const demoSalesUsername = (index: number) => `demo.sales${index}`

export async function seedUsers(
  conn: Kysely<DB>,
  salesUsers: number,
): Promise<{ created: number; salesIds: number[]; managerId: number | undefined }> {
  const wanted = [
    ...Array.from({ length: salesUsers }, (_, index) => ({
      username: demoSalesUsername(index + 1),
      fullName: SALES_FULL_NAMES[index % SALES_FULL_NAMES.length] as string,
      role: 'sales' as const,
    })),
    { username: DEMO_MANAGER, fullName: 'María Elena Castillo', role: 'management' as const },
  ]
  const usernames = wanted.map((user) => user.username)
  const existing = new Set(
    (await conn.selectFrom('users').select('username').where('username', 'in', usernames).execute()).map(
      (user) => user.username,
    ),
  )
  const missing = wanted.filter((user) => !existing.has(user.username))
  let created = 0
  if (missing.length > 0) {
    // One hash for all of them: argon2 is slow on purpose.
    const passwordHash = await hashPassword(DEMO_PASSWORD)
    const values = sql.join(
      missing.map(
        (user) =>
          sql`(${user.username}::text, ${user.fullName}::text, ${user.role}::user_role, ${`${user.username}@demo.example`}::text)`,
      ),
    )
    const result = await sql<{ id: number }>`
      with wanted (username, full_name, role, email) as (values ${values}),
      inserted as (
        insert into users (username, full_name, role, email, password_hash)
        select username, full_name, role, email, ${passwordHash}::text from wanted
        on conflict do nothing
        returning *
      ),
      audit as (
        insert into audit_logs (table_name, record_id, action, old_values, new_values, user_id, username, request_id)
        select 'users', id, 'create', null, to_jsonb(inserted) - 'password_hash' - 'token_version', null, 'seed', null
        from inserted
      )
      select id from inserted`.execute(conn)
    created = result.rows.length
  }
  const rows = await conn
    .selectFrom('users')
    .select(['id', 'username', 'role'])
    .where('username', 'in', usernames)
    .where('is_active', '=', true)
    .orderBy('id')
    .execute()
  return {
    created,
    // Only those still in their demo role: a lead is assigned to a sales user.
    salesIds: rows.filter((user) => user.role === 'sales' && user.username !== DEMO_MANAGER).map((user) => user.id),
    managerId: rows.find((user) => user.username === DEMO_MANAGER)?.id,
  }
}
