import { sql } from 'kysely'
import type pg from 'pg'
import { Gauge, Registry } from 'prom-client'
import type { Database } from '../db/database.js'
import { processRegistry } from './registry.js'

interface Backlog {
  undispatched_events: number
  pending_deliveries: number
  pending_mails: number
  oldest_age_seconds: number | null
}

/**
 * The backlog read at scrape time, in one statement that touches partial indexes only: counts over
 * the pending rows' indexes, and the oldest by index order (a limit 1 each, per active webhook for
 * deliveries). Deliveries held for a disabled webhook wait for it to be turned on again: left out.
 */
export async function readBacklog(db: Database): Promise<Backlog> {
  const result = await sql<Backlog>`
    select
      (select count(*) from events where dispatched_at is null) as undispatched_events,
      (select count(*) from webhook_deliveries
        where state = 'pending' and webhook_id in (select id from webhooks where is_active)) as pending_deliveries,
      (select count(*) from notifications where state in ('pending', 'sending')) as pending_mails,
      extract(epoch from now() - least(
        (select occurred_at from events where dispatched_at is null order by id limit 1),
        (select min(e.occurred_at) from webhooks w
          cross join lateral (
            select d.event_id from webhook_deliveries d
            where d.webhook_id = w.id and d.state = 'pending'
            order by d.event_id limit 1
          ) oldest
          join events e on e.id = oldest.event_id
          where w.is_active),
        (select e.occurred_at from events e where e.id = (
          select event_id from notifications
          where state in ('pending', 'sending') and event_id is not null
          order by event_id limit 1))
      ))::float8 as oldest_age_seconds`.execute(db)
  return result.rows[0] as Backlog
}

/**
 * The text of GET /metrics: this process's series, its pool, and the backlog, which is the same for
 * every instance on the database (aggregate it with max, not sum). The backlog is read at each scrape.
 */
export interface MetricsScraper {
  contentType: string
  scrape(): Promise<string>
}

export function metricsScraper(db: Database, pool: pg.Pool | undefined): MetricsScraper {
  const poolRegistry = new Registry()
  if (pool) {
    const connections = new Gauge({
      name: 'crm_db_pool_connections',
      help: "This process's database connections, by state: total, idle, and waiting (requests queued for one)",
      labelNames: ['state'] as const,
      registers: [poolRegistry],
      collect() {
        connections.set({ state: 'total' }, pool.totalCount)
        connections.set({ state: 'idle' }, pool.idleCount)
        connections.set({ state: 'waiting' }, pool.waitingCount)
      },
    })
  }
  const backlogRegistry = new Registry()
  const pending = new Gauge({
    name: 'crm_event_backlog',
    help: 'Work not done yet, by queue: events not yet fanned out, webhook deliveries to active webhooks, mails to send',
    labelNames: ['queue'] as const,
    registers: [backlogRegistry],
  })
  const oldest = new Gauge({
    name: 'crm_event_backlog_oldest_age_seconds',
    help: 'Age of the oldest event not yet fanned out, delivered to an active webhook or mailed (0: none)',
    registers: [backlogRegistry],
  })
  const all = Registry.merge([processRegistry, poolRegistry, backlogRegistry])
  const withoutBacklog = Registry.merge([processRegistry, poolRegistry])
  return {
    contentType: all.contentType,
    async scrape() {
      let backlog: Backlog
      try {
        backlog = await readBacklog(db)
      } catch {
        // The database not answering is when the other series matter most: they are served, the
        // backlog left out rather than shown stale.
        return withoutBacklog.metrics()
      }
      pending.set({ queue: 'events' }, backlog.undispatched_events)
      pending.set({ queue: 'webhook_deliveries' }, backlog.pending_deliveries)
      pending.set({ queue: 'mails' }, backlog.pending_mails)
      oldest.set(Math.max(0, backlog.oldest_age_seconds ?? 0))
      return all.metrics()
    },
  }
}
