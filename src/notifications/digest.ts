// The morning digest: one mail per user and local day, planned during DIGEST_HOUR on the user's clock.
import { DateTime } from 'luxon'
import { type Agenda, getAgenda } from '../agenda/queries.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import type { LeadStatus } from '../db/types.js'
import { canonicalTimeZone } from '../time-zone.js'

export interface DigestTask {
  id: number
  title: string
  due_at: string
  lead_id: number | null
}

export interface DigestLead {
  id: number
  status: LeadStatus
  client: { contact_name: string; company_name: string | null }
}

interface DigestList<T> {
  items: T[]
  total: number
}

/** What a digest mail shows, kept in its notification row as it was when planned. */
export interface Digest {
  /** The user's local date, YYYY-MM-DD. */
  date: string
  overdue_tasks: DigestList<DigestTask>
  tasks_today: DigestList<DigestTask>
  awaiting_first_response: DigestList<DigestLead>
  stale_leads: DigestList<DigestLead>
}

export interface DigestOptions {
  /** The instant to plan for: the workers' clock, which tests set. */
  now: Date
  hour: number
  defaultTimeZone: string
}

/**
 * Plans the digests due at `now`: for each active user with an email and `daily_digest` on whose
 * local hour is `hour`, a notification keyed by their local date, so that however many instances
 * and restarts run this during the hour, the unique (subject_key, user_id) lets one through. A day
 * with nothing in the agenda gets no mail. Returns how many it planned.
 */
export async function planDigests(db: Database, options: DigestOptions): Promise<number> {
  const users = await db
    .selectFrom('users')
    .select(['id', 'username', 'role', 'time_zone'])
    .where('is_active', '=', true)
    .where('email', 'is not', null)
    .where('notify_daily_digest', '=', true)
    .execute()
  const due = users.flatMap((user) => {
    // A zone the database holds but this runtime does not know reads in the default one.
    const timeZone = (user.time_zone && canonicalTimeZone(user.time_zone)) || options.defaultTimeZone
    const local = DateTime.fromJSDate(options.now, { zone: timeZone })
    return local.hour === options.hour ? [{ user, timeZone, key: `digest:${local.toISODate()}` }] : []
  })
  if (due.length === 0) return 0
  const planned = await db
    .selectFrom('notifications')
    .select(['user_id', 'subject_key'])
    .where(
      'user_id',
      'in',
      due.map((entry) => entry.user.id),
    )
    .where('subject_key', 'in', [...new Set(due.map((entry) => entry.key))])
    .execute()
  const done = new Set(planned.map((row) => `${row.user_id} ${row.subject_key}`))
  let count = 0
  for (const { user, timeZone, key } of due) {
    if (done.has(`${user.id} ${key}`)) continue
    const actor: AuthenticatedActor = { userId: user.id, username: user.username, role: user.role, requestId: null }
    const digest = digestOf(key.slice('digest:'.length), await getAgenda(db, actor, timeZone))
    if (isEmpty(digest)) continue
    const inserted = await db
      .insertInto('notifications')
      .values({ subject_key: key, user_id: user.id, kind: 'daily_digest', data: JSON.stringify(digest) })
      .onConflict((conflict) => conflict.constraint('notifications_once').doNothing())
      .returning('id')
      .executeTakeFirst()
    if (inserted) count += 1
  }
  return count
}

function digestOf(date: string, agenda: Agenda): Digest {
  const tasks = (list: Agenda['overdue_tasks']): DigestList<DigestTask> => ({
    total: list.total,
    items: list.items.map((task) => ({
      id: task.id,
      title: task.title,
      due_at: new Date(task.due_at).toISOString(),
      lead_id: task.lead_id,
    })),
  })
  const leads = (list: Agenda['stale_leads']): DigestList<DigestLead> => ({
    total: list.total,
    items: list.items.map((lead) => ({
      id: lead.id,
      status: lead.status,
      client: { contact_name: lead.client.contact_name, company_name: lead.client.company_name },
    })),
  })
  return {
    date,
    overdue_tasks: tasks(agenda.overdue_tasks),
    tasks_today: tasks(agenda.tasks_today),
    awaiting_first_response: leads(agenda.awaiting_first_response),
    stale_leads: leads(agenda.stale_leads),
  }
}

function isEmpty(digest: Digest): boolean {
  return (
    digest.overdue_tasks.total +
      digest.tasks_today.total +
      digest.awaiting_first_response.total +
      digest.stale_leads.total ===
    0
  )
}
