import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { systemActor } from '../../src/auth/actor.js'
import { hashPassword, verifyPassword } from '../../src/auth/passwords.js'
import type { Database } from '../../src/db/database.js'
import { cursorAfter } from '../../src/db/paginate.js'
import { createOrResetAdmin } from '../../src/users/bootstrap.js'
import { createUser, updateUser } from '../../src/users/service.js'
import { seedDemo } from '../seed/demo.js'
import { DEMO_PASSWORD } from '../seed/users.js'
import { BENCH_ADMIN, BENCH_SALES, log } from './common.js'
import type { FloorSpec, Role } from './floor.js'
import type { Options } from './options.js'

/** Inputs the statements are captured with; the floor puts each request's own in their place. */
const SENTINEL_Q = 'qqzz'
const SENTINEL_Q_SHORT = 'qzx'
const SENTINEL_STATUS = 'quoted'
// Two words with vowels, so that each of the full-text search's four term arrays differs from the others.
const SENTINEL_FULL_TEXT = 'qazuqe qezoqa'

export interface Sizes {
  clients: number
  leads: number
  audit_logs: number
  sizes_mb: Record<string, number>
}

export async function countRows(db: Database): Promise<Sizes> {
  const counts = await sql<{ clients: number; leads: number; audit_logs: number }>`
    select (select count(*) from clients) as clients, (select count(*) from leads) as leads,
      (select count(*) from audit_logs) as audit_logs`.execute(db)
  const sizes = await sql<{ name: string; mb: number }>`
    select relname as name, round(pg_total_relation_size(oid) / 1048576.0, 1)::float8 as mb
    from pg_class where relname in ('clients', 'leads', 'audit_logs')`.execute(db)
  const row = counts.rows[0] ?? { clients: 0, leads: 0, audit_logs: 0 }
  return {
    clients: Number(row.clients),
    leads: Number(row.leads),
    audit_logs: Number(row.audit_logs),
    sizes_mb: Object.fromEntries(sizes.rows.map((size) => [size.name, Number(size.mb)])),
  }
}

export async function seedMissing(db: Database, options: Options): Promise<void> {
  const before = await countRows(db)
  const clients = Math.max(0, options.clients - before.clients)
  const leads = Math.max(0, options.leads - before.leads)
  log(`database has ${before.clients} clients and ${before.leads} leads`)
  if (clients === 0 && leads === 0) return
  if (options.skipSeed) {
    log(`--skip-seed: measuring with what is there (${clients} clients and ${leads} leads short)`)
    return
  }
  log(`seeding ${clients} clients and ${leads} leads`)
  await seedDemo(db, { clients, leads, salesUsers: 5 }, (message) => log(`seed: ${message}`))
}

export interface BenchUser {
  id: number
  username: string
  password: string
}

/** bench.admin with a new password, and the active sales user with leads (demo.sales1 when there). */
export async function prepareUsers(db: Database): Promise<Record<Role, BenchUser>> {
  const adminPassword = randomBytes(18).toString('base64url')
  await createOrResetAdmin(db, BENCH_ADMIN, adminPassword)
  const admin = await db.selectFrom('users').select('id').where('username', '=', BENCH_ADMIN).executeTakeFirstOrThrow()

  let sales = await db
    .selectFrom('users')
    .select(['id', 'username', 'password_hash'])
    .where('role', '=', 'sales')
    .where('is_active', '=', true)
    .where((eb) => eb.exists(eb.selectFrom('leads').select('leads.id').whereRef('leads.assigned_to', '=', 'users.id')))
    .orderBy(sql`username = 'demo.sales1'`, 'desc')
    .orderBy('id')
    .executeTakeFirst()
  if (!sales) {
    log(`no sales user has leads: creating ${BENCH_SALES}, whose scoped reads will find nothing`)
    const passwordHash = await hashPassword(DEMO_PASSWORD)
    await db
      .transaction()
      .execute((trx) =>
        createUser(trx, systemActor('bench'), { username: BENCH_SALES, passwordHash, role: 'sales' }).catch(() => null),
      )
    sales = await db
      .selectFrom('users')
      .select(['id', 'username', 'password_hash'])
      .where('username', '=', BENCH_SALES)
      .executeTakeFirstOrThrow()
  }
  if (!(await verifyPassword(sales.password_hash, DEMO_PASSWORD))) {
    log(`setting the password of ${sales.username} to the demo password`)
    const passwordHash = await hashPassword(DEMO_PASSWORD)
    const id = sales.id
    await db.transaction().execute((trx) => updateUser(trx, systemActor('bench'), id, { passwordHash }))
  }
  return {
    admin: { id: admin.id, username: BENCH_ADMIN, password: adminPassword },
    sales: { id: sales.id, username: sales.username, password: DEMO_PASSWORD },
  }
}

const BENCH_TASK_TITLE = 'Bench: call back'
/** Leads with a bench task: about one in fifty. */
const TASK_SHARE = 0.02

/**
 * Tasks for GET /me/agenda, made once (again with --skip-seed only when missing): on about one live
 * lead in fifty, assigned to its assignee (bench.admin for an unassigned one), due from 20 days ago to
 * 20 days ahead, so that about half are overdue and a few due today; a third done. Marked as reminded,
 * so that no reminder is owed for them, and the leads' next_task_at kept as the tasks service keeps it.
 */
export async function prepareTasks(db: Database, users: Record<Role, BenchUser>): Promise<void> {
  const counted = await sql<{ tasks: number; leads: number }>`
    select (select count(*) from tasks where title = ${BENCH_TASK_TITLE})::int as tasks,
      (select count(*) from leads where deleted_at is null)::int as leads`.execute(db)
  const { tasks, leads } = counted.rows[0] ?? { tasks: 0, leads: 0 }
  if (tasks >= leads * TASK_SHARE * 0.9) {
    log(`${tasks} bench tasks there`)
    return
  }
  const started = performance.now()
  await db.transaction().execute(async (trx) => {
    await sql`
      with picked as (
        select id, assigned_to from leads tablesample system (${TASK_SHARE * 100}) where deleted_at is null
      ),
      drawn as (
        select id, coalesce(assigned_to, ${users.admin.id}) as assigned_to,
          now() - interval '20 days' + random() * interval '40 days' as due_at, random() as r_done
        from picked
      )
      insert into tasks (title, due_at, lead_id, assigned_to, created_by, done_at, reminded_for, created_at)
      select ${BENCH_TASK_TITLE}, due_at, id, assigned_to, ${users.admin.id},
        case when r_done < 0.33 then least(due_at, now()) end, due_at, least(due_at, now()) - interval '1 day'
      from drawn`.execute(trx)
    await sql`
      update leads set next_task_at = next.due_at
      from (
        select lead_id, min(due_at) as due_at from tasks
        where done_at is null and lead_id is not null group by lead_id
      ) next
      where leads.id = next.lead_id and leads.next_task_at is distinct from next.due_at`.execute(trx)
  })
  log(`bench tasks made in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

/** The searches measured: one letter, three, eight, and a full name with a typo. */
export const SEARCH_KINDS = ['one_letter', 'three_letters', 'eight_letters', 'name_with_typo'] as const
export type SearchKind = (typeof SEARCH_KINDS)[number]

export interface Samples {
  clientIds: number[]
  searches: Record<SearchKind, string[]>
  /** Every search input, for the plans. */
  fragments: string[]
  /** GET /search inputs: words of lead notes, whole and as their first letters, and client surnames. */
  fullText: string[]
  /** Per role: the cursor of GET /leads?status=new&sort=-created_at&limit=50 at page 10,000 (or the deepest there is). */
  deepCursors: Record<Role, string>
  /** Leads in contacted or quoted, flipped between the two by the status scenario. */
  flipPool: Array<{ id: number; status: 'contacted' | 'quoted' }>
  sentinels: FloorSpec['sentinels']
}

export async function sample(db: Database, users: Record<Role, BenchUser>): Promise<Samples> {
  const clientIds = (
    await sql<{ id: number }>`select id from clients order by random() limit 10000`.execute(db)
  ).rows.map((row) => row.id)
  const names = (
    await sql<{ contact_name: string }>`select contact_name from clients order by random() limit 300`.execute(db)
  ).rows.map((row) => row.contact_name.toLowerCase())
  const wordsOf = (name: string) => name.split(/\s+/).filter((word) => /^\p{L}+$/u.test(word))
  const randomOf = <T>(items: T[]): T | undefined => items[Math.floor(Math.random() * items.length)]
  const searches: Record<SearchKind, Set<string>> = {
    one_letter: new Set(),
    three_letters: new Set(),
    eight_letters: new Set(),
    name_with_typo: new Set(),
  }
  for (const name of names) {
    const words = wordsOf(name)
    const word = randomOf(words.filter((candidate) => candidate.length >= 3))
    if (word) {
      if (searches.one_letter.size < 8) searches.one_letter.add(word.slice(0, 1))
      const start = Math.floor(Math.random() * (word.length - 2))
      if (searches.three_letters.size < 8) searches.three_letters.add(word.slice(start, start + 3))
    }
    const long = randomOf(words.filter((candidate) => candidate.length >= 8))
    if (long && searches.eight_letters.size < 8) searches.eight_letters.add(long.slice(0, 8))
    if (words.length >= 2 && searches.name_with_typo.size < 8) {
      // One letter of the longest word replaced by its neighbour in the alphabet.
      const longest = words.reduce((a, b) => (b.length > a.length ? b : a))
      const at = 1 + Math.floor(Math.random() * (longest.length - 2))
      const replaced = String.fromCharCode(((longest.charCodeAt(at) - 96) % 26) + 97)
      const typo = `${longest.slice(0, at)}${replaced}${longest.slice(at + 1)}`
      searches.name_with_typo.add(words.map((candidate) => (candidate === longest ? typo : candidate)).join(' '))
    }
  }
  const notes = (
    await sql<{ notes: string }>`
      select concat_ws(' ', admin_notes, sales_notes) as notes from leads
      where coalesce(admin_notes, sales_notes) is not null order by random() limit 300`.execute(db)
  ).rows.map((row) => row.notes.toLowerCase())
  const noteWords = [...new Set(notes.flatMap(wordsOf).filter((word) => word.length >= 5))]
  const fullText = new Set<string>()
  for (const word of noteWords.slice(0, 4)) fullText.add(word)
  for (const word of noteWords.slice(4, 6)) fullText.add(word.slice(0, 4))
  for (const name of names.slice(0, 2)) fullText.add(wordsOf(name).at(-1) ?? name)
  const deepCursors = {} as Record<Role, string>
  for (const role of ['admin', 'sales'] as const) {
    const scope = role === 'sales' ? sql`and assigned_to = ${users.sales.id}` : sql``
    const counted = await sql<{ n: number }>`
      select count(*)::int as n from (select 1 from leads where status = 'new' ${scope} limit 500000) as matched`.execute(
      db,
    )
    const depth = Math.max(1, Math.min(499_950, Number(counted.rows[0]?.n ?? 0) - 50))
    const row = await sql<{ t: number; id: number }>`
      select (extract(epoch from created_at) * 1000000)::bigint as t, id from leads where status = 'new' ${scope}
      order by created_at desc, id desc offset ${depth - 1} limit 1`.execute(db)
    const last = row.rows[0]
    if (!last) throw new Error(`no new leads for ${role}: the deep page cannot be measured`)
    deepCursors[role] = cursorAfter([Number(last.t), last.id], { status: ['new'], sort: '-created_at' })
    log(`deep page for ${role}: after row ${depth.toLocaleString('en')} of status=new`)
  }
  const flipPool = (
    await sql<{ id: number; status: 'contacted' | 'quoted' }>`
      select id, status from leads where status in ('contacted', 'quoted') order by random() limit 20000`.execute(db)
  ).rows
  // Sentinels must not be mistaken for any other parameter (user ids, limits, offsets).
  const taken = new Set([0, 20, 50, users.admin.id, users.sales.id])
  const clientId = clientIds.find((id) => !taken.has(id) && id > 200)
  const lead = flipPool.find((row) => row.status === 'contacted' && row.id !== clientId && !taken.has(row.id))
  if (clientId === undefined || lead === undefined) throw new Error('too few clients or leads to benchmark')
  const lists = Object.fromEntries(SEARCH_KINDS.map((kind) => [kind, [...searches[kind]]])) as Record<
    SearchKind,
    string[]
  >
  return {
    clientIds,
    searches: lists,
    fragments: SEARCH_KINDS.flatMap((kind) => lists[kind]),
    fullText: [...fullText],
    deepCursors,
    flipPool: flipPool.filter((row) => row.id !== lead.id),
    sentinels: {
      clientId,
      leadId: lead.id,
      q: SENTINEL_Q,
      qShort: SENTINEL_Q_SHORT,
      qFullText: SENTINEL_FULL_TEXT,
      username: BENCH_ADMIN,
      status: SENTINEL_STATUS,
    },
  }
}

/** The last thirty days but today, as the stats' created_from and created_to. */
export function monthRange(): { created_from: string; created_to: string } {
  const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10)
  return { created_from: day(30), created_to: day(1) }
}
