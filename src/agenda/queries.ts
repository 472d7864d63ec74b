// The caller's day: the first lists a seller opens, each read by the filter of its own list.
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { filteredLeads, type Lead, type LeadFilter, STAY_START, withClient } from '../leads/queries.js'
import { filteredTasks, selectTask, type Task, type TaskFilter } from '../tasks/queries.js'
import { AGENDA_ITEMS } from './schemas.js'

export interface AgendaList<T> {
  items: T[]
  total: number
}

export interface Agenda {
  overdue_tasks: AgendaList<Task>
  tasks_today: AgendaList<Task>
  awaiting_first_response: AgendaList<Lead>
  stale_leads: AgendaList<Lead>
}

/** The filters of GET /tasks and GET /leads that each list answers, as the docs give them. */
export const AGENDA_FILTERS = {
  overdue_tasks: { assigned_to: ['me'], status: 'overdue' },
  tasks_today: { assigned_to: ['me'], status: 'due_today' },
  awaiting_first_response: { assigned_to: ['me'], awaiting_first_response: true },
  stale_leads: { assigned_to: ['me'], stale: true },
} satisfies Record<'overdue_tasks' | 'tasks_today', TaskFilter> &
  Record<'awaiting_first_response' | 'stale_leads', LeadFilter>

async function tasks(db: Database, actor: AuthenticatedActor, filter: TaskFilter, timeZone: string) {
  const matching = filteredTasks(db, actor, filter, timeZone)
  const [items, count] = await Promise.all([
    selectTask(matching).orderBy('tasks.due_at').orderBy('tasks.id').limit(AGENDA_ITEMS).execute(),
    matching.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
  ])
  return { items, total: Number(count.total) }
}

async function leads(db: Database, actor: AuthenticatedActor, filter: LeadFilter, oldestFirst: 'created' | 'stay') {
  const matching = filteredLeads(db, actor, filter)
  const [items, count] = await Promise.all([
    withClient(matching)
      .orderBy(oldestFirst === 'created' ? 'leads.created_at' : STAY_START)
      .orderBy('leads.id')
      .limit(AGENDA_ITEMS)
      .execute(),
    matching.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
  ])
  return { items, total: Number(count.total) }
}

/**
 * GET /me/agenda: the caller's own tasks (overdue, due today in `timeZone`) and leads assigned to
 * them (awaiting a first response, oldest first; stale, longest stay first), whatever their role.
 */
export async function getAgenda(db: Database, actor: AuthenticatedActor, timeZone: string): Promise<Agenda> {
  const [overdue, today, awaiting, stale] = await Promise.all([
    tasks(db, actor, AGENDA_FILTERS.overdue_tasks, timeZone),
    tasks(db, actor, AGENDA_FILTERS.tasks_today, timeZone),
    leads(db, actor, AGENDA_FILTERS.awaiting_first_response, 'created'),
    leads(db, actor, AGENDA_FILTERS.stale_leads, 'stay'),
  ])
  return { overdue_tasks: overdue, tasks_today: today, awaiting_first_response: awaiting, stale_leads: stale }
}
