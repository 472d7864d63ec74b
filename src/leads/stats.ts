import { type Expression, type RawBuilder, type SqlBool, sql, type Transaction } from 'kysely'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { dateRange } from '../db/dates.js'
import { LEAD_CHANNELS, LEAD_STATUSES, OPEN_LEAD_STATUSES } from '../db/enums.js'
import type { DB, LeadChannel, LeadStatus } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'
import { durationSeconds } from '../pipeline/business-time.js'
import { getPipelineSettings } from '../pipeline/service.js'
import { keyConditions } from './counter-keys.js'
import { filteredLeads, type LeadFilter } from './queries.js'
import { MAX_STATS_DAYS } from './schemas.js'
import { type LeadValueStats, leadValueStats } from './value-stats.js'

/** How fast leads got their first response (see docs/api.md, "Response times"). */
export interface ResponseTime {
  median_seconds: number | null
  p90_seconds: number | null
  within_target_ratio: number | null
  waiting: number
}

export interface LeadStats {
  total: number
  by_status: Record<LeadStatus, number>
  by_channel: Record<LeadChannel, number>
  by_assignee: Array<{
    user_id: number | null
    username: string | null
    full_name: string | null
    total: number
    closed: number
    response_time: ResponseTime
  }>
  conversion_rate: number
  per_day: Array<{ date: string; created: number; closed: number }>
  response_time: ResponseTime & { by_channel: Record<LeadChannel, ResponseTime> }
  value: LeadValueStats
}

/** The counts, from the counters or a scan; the response times come from a query of their own. */
export type LeadCounts = Omit<LeadStats, 'by_assignee' | 'response_time' | 'value'> & {
  by_assignee: Array<Omit<LeadStats['by_assignee'][number], 'response_time'>>
}

/** Filters the counters can answer; any other (q, client_id, client_type, the other date ranges…) is answered by a scan. */
const COUNTED_FILTERS = new Set<string>(['status', 'channel', 'assigned_to', 'created_from', 'created_to'])

const DAY_MS = 86_400_000

/**
 * GET /leads/stats: from the counters that a trigger keeps in the transaction of every lead change
 * (db/migrations/20261127120100_lead_counts.sql) when they can answer the filters, otherwise from
 * a scan of the matching leads. Both give the same answer; tests/lead-counts.test.ts checks it.
 */
export async function leadStats(db: Database, actor: AuthenticatedActor, filter: LeadFilter): Promise<LeadStats> {
  // A range refused before either query starts.
  statsRange(filter)
  const [counts, responses, value] = await Promise.all([
    countersAnswer(filter) ? statsFromCounters(db, actor, filter) : statsFromScan(db, actor, filter),
    responseTimes(db, actor, filter),
    leadValueStats(db, actor, filter),
  ])
  const of = (key: string) => responses.get(key) ?? NO_RESPONSES
  return {
    ...counts,
    by_assignee: counts.by_assignee.map((entry) => ({ ...entry, response_time: of(`assignee:${entry.user_id}`) })),
    response_time: {
      ...of('all'),
      by_channel: Object.fromEntries(LEAD_CHANNELS.map((channel) => [channel, of(`channel:${channel}`)])) as Record<
        LeadChannel,
        ResponseTime
      >,
    },
    value,
  }
}

const NO_RESPONSES: ResponseTime = { median_seconds: null, p90_seconds: null, within_target_ratio: null, waiting: 0 }

interface ResponseRow {
  channel: LeadChannel | null
  assigned_to: number | null
  grouping: number
  /** [median, p90], one sort for both; null when no lead of the group was answered. */
  percentiles: Array<number | null> | null
  answered: number
  within: number
  waiting: number
}

/** Filters the response-time histogram can answer; any other is answered by a scan. */
const BUCKETED_FILTERS = new Set<string>(['channel', 'assigned_to'])

/** The percentiles reported, in the order of `percentiles` in a row. */
const PERCENTILES = [0.5, 0.9]

/** True when no filter is beyond the channel and the assignee (the keys of lead_response_buckets). */
export function bucketsAnswer(filter: LeadFilter): boolean {
  return Object.entries(filter).every(([name, value]) => value === undefined || BUCKETED_FILTERS.has(name))
}

/**
 * Exact percentiles of response_seconds over the matching leads, overall, by channel and by assignee:
 * percentile_disc, so each figure is a response time a lead really had. From the histogram when the
 * filters allow, otherwise from one grouped scan of the matching leads.
 */
async function responseTimes(
  db: Database,
  actor: AuthenticatedActor,
  filter: LeadFilter,
): Promise<Map<string, ResponseTime>> {
  const settings = await getPipelineSettings(db)
  // response_seconds is whole: it is within a fractional target exactly when within its whole part.
  const target = Math.floor(durationSeconds(settings.response_target) ?? 0)
  const rows = await db.transaction().execute(async (trx) => {
    // Both reads are estimated far above their cost (the planner cannot bound a lookup inside a bucket,
    // nor see the index-only range of a month): past jit_above_cost, compiling would take ~100 ms, longer
    // than the read itself. Local to this transaction, as every setting a request makes.
    await sql`set local jit = off`.execute(trx)
    const read = bucketsAnswer(filter)
      ? responseRowsFromBuckets(trx, actor, filter, target)
      : sql<ResponseRow>`
          with matching as (${filteredLeads(trx, actor, filter).select(['leads.channel', 'leads.assigned_to', 'leads.status', 'leads.response_seconds'])})
          select channel, assigned_to, grouping(channel, assigned_to) as grouping,
            percentile_disc(${PERCENTILES}::float8[]) within group (order by response_seconds) as percentiles,
            count(response_seconds)::int as answered,
            (count(*) filter (where response_seconds <= ${target}::bigint))::int as within,
            (count(*) filter (where response_seconds is null and status = any(${[...OPEN_LEAD_STATUSES]})))::int as waiting
          from matching
          group by grouping sets ((), (channel), (assigned_to))`.execute(trx)
    return (await read).rows
  })
  const times = new Map<string, ResponseTime>()
  for (const row of rows) {
    const answered = Number(row.answered)
    const key =
      Number(row.grouping) === 0b11
        ? 'all'
        : Number(row.grouping) === 0b01
          ? `channel:${row.channel}`
          : `assignee:${row.assigned_to}`
    times.set(key, {
      median_seconds: answered === 0 ? null : Number(row.percentiles?.[0]),
      p90_seconds: answered === 0 ? null : Number(row.percentiles?.[1]),
      within_target_ratio: answered === 0 ? null : Number(row.within) / answered,
      waiting: Number(row.waiting),
    })
  }
  return times
}

/**
 * The same rows from lead_response_buckets (db/migrations/20261207160000_lead_response_buckets.sql),
 * in one statement: the buckets summed per group give the counts and, for each percentile, the bucket
 * holding its rank (ceil(fraction × answered), as percentile_disc computes it) and the rank inside it;
 * an index range scan inside that bucket reads the value at that rank. The count under the target is
 * the buckets wholly under it plus, in the bucket it falls in, a count of the leads at or under it.
 */
function responseRowsFromBuckets(db: Transaction<DB>, actor: AuthenticatedActor, filter: LeadFilter, target: number) {
  const keys = keyConditions(actor, filter)
  // One branch per kind of group, each gated on its kind so that only one runs, each on its own index.
  const inGroup = (branch: (where: RawBuilder<unknown>) => RawBuilder<unknown>) =>
    sql.join(
      [
        sql`w.grouping = 3`,
        sql`w.grouping = 1 and channel = w.channel`,
        sql`w.grouping = 2 and assigned_to = w.assigned_to`,
        sql`w.grouping = 2 and w.assigned_to is null and assigned_to is null`,
      ].map(
        (group) =>
          sql`(${branch(sql`leads where ${group}
            and deleted_at is null and response_seconds >= w.lo and response_seconds < w.hi
            ${keys.length ? sql`and ${and(keys)}` : sql``}`)})`,
      ),
      sql` union all `,
    )
  return sql<ResponseRow>`
    with grouped as (
      select g.*, b.lo, b.hi
      from (
        select grouping(channel, assigned_to)::int as grouping, channel, assigned_to, bucket, sum(leads)::bigint as leads
        from lead_response_buckets
        where ${and([sql<SqlBool>`leads <> 0`, ...keys])}
        group by grouping sets ((bucket), (channel, bucket), (assigned_to, bucket))
        having sum(leads) <> 0
      ) g
      left join response_bucket_bounds b on b.bucket = g.bucket
    ),
    groups as (
      select grouping, channel, assigned_to,
        coalesce(sum(leads) filter (where bucket is not null), 0)::bigint as answered,
        coalesce(sum(leads) filter (where bucket is null), 0)::bigint as waiting,
        coalesce(sum(leads) filter (where hi <= ${target}::bigint + 1), 0)::bigint as within
      from grouped
      group by grouping, channel, assigned_to
    ),
    ranked as (
      select grouping, channel, assigned_to, leads, lo, hi,
        sum(leads) over (partition by grouping, channel, assigned_to) as answered,
        sum(leads) over (partition by grouping, channel, assigned_to order by bucket) as upto
      from grouped
      where bucket is not null
    ),
    -- The bucket holding each percentile's rank, and the rank inside it (from 0).
    wanted as (
      select r.grouping, r.channel, r.assigned_to, p.i, r.lo, r.hi, p.k - (r.upto - r.leads) - 1 as skip
      from ranked r
      cross join lateral (
        select f.i, greatest(1, ceil(f.fraction * r.answered::float8))::bigint as k
        from unnest(${PERCENTILES}::float8[]) with ordinality as f(fraction, i)
      ) p
      where r.upto >= p.k and r.upto - r.leads < p.k
    ),
    picked as (
      select w.grouping, w.channel, w.assigned_to, w.i, v.value
      from wanted w
      left join lateral (
        ${inGroup((from) => sql`select response_seconds as value from ${from} order by response_seconds offset w.skip limit 1`)}
      ) v on true
    ),
    -- The bucket the target falls in, when it holds values on both sides of it: those up to the target.
    -- The limit (the bucket's count, never reached) keeps the planner's estimate of each count small.
    boundary as (
      select w.grouping, w.channel, w.assigned_to, c.under
      from (
        select grouping, channel, assigned_to, leads, lo, ${target}::bigint + 1 as hi
        from ranked where lo <= ${target}::bigint and hi > ${target}::bigint + 1
      ) w
      cross join lateral (
        select sum(n) as under
        from (${inGroup((from) => sql`select count(*) as n from (select from ${from} limit w.leads) as l`)}) as counted
      ) c
    )
    select s.grouping, s.channel, s.assigned_to, s.answered::int, s.waiting::int,
      (s.within + coalesce(b.under, 0))::int as within, p.percentiles
    from groups s
    left join (
      select grouping, channel, assigned_to, array_agg(value order by i) as percentiles
      from picked group by grouping, channel, assigned_to
    ) p on p.grouping = s.grouping and p.channel is not distinct from s.channel
      and p.assigned_to is not distinct from s.assigned_to
    left join (
      select grouping, channel, assigned_to, sum(under) as under
      from boundary group by grouping, channel, assigned_to
    ) b on b.grouping = s.grouping and b.channel is not distinct from s.channel
      and b.assigned_to is not distinct from s.assigned_to`.execute(db)
}

/** True when no filter is beyond the counters and the creation range falls on whole UTC days. */
export function countersAnswer(filter: LeadFilter): boolean {
  const used = Object.entries(filter).filter(([, value]) => value !== undefined)
  if (used.some(([name]) => !COUNTED_FILTERS.has(name))) return false
  const range = statsRange(filter)
  return [range.from, range.before].every((bound) => bound === undefined || bound.getTime() % DAY_MS === 0)
}

/** The creation range, refused when its per-day series would be longer than MAX_STATS_DAYS. */
function statsRange(filter: LeadFilter): { from?: Date; before?: Date } {
  const range = dateRange(
    { from: 'created_from', to: 'created_to' },
    { from: filter.created_from, to: filter.created_to },
  )
  // One entry per day: a range of centuries would be millions of rows in one answer.
  const now = Date.now()
  if ((range.before?.getTime() ?? now) - (range.from?.getTime() ?? now) > MAX_STATS_DAYS * DAY_MS) {
    throw ValidationError.field(
      range.from ? 'created_from' : 'created_to',
      `the stats cover at most ${MAX_STATS_DAYS} days; narrow created_from..created_to`,
    )
  }
  return range
}

interface Groups {
  byStatus: Map<LeadStatus, number>
  byChannel: Map<LeadChannel, number>
  byAssignee: Map<number | null, { total: number; closed: number }>
  created: Map<string, number>
  closed: Map<string, number>
  /** The first and last day of per_day. */
  firstDay: string | null
  lastDay: string
}

async function assemble(db: Database, groups: Groups): Promise<LeadCounts> {
  const byStatus = Object.fromEntries(LEAD_STATUSES.map((status) => [status, groups.byStatus.get(status) ?? 0]))
  const byChannel = Object.fromEntries(LEAD_CHANNELS.map((channel) => [channel, groups.byChannel.get(channel) ?? 0]))
  const total = [...groups.byStatus.values()].reduce((sum, count) => sum + count, 0)

  const assigneeIds = [...groups.byAssignee.keys()].filter((id): id is number => id !== null)
  const users = new Map(
    assigneeIds.length === 0
      ? []
      : (
          await db.selectFrom('users').select(['id', 'username', 'full_name']).where('id', 'in', assigneeIds).execute()
        ).map((user) => [user.id, user] as const),
  )
  const by_assignee = [...groups.byAssignee]
    .map(([userId, counts]) => {
      const user = userId === null ? undefined : users.get(userId)
      return { user_id: userId, username: user?.username ?? null, full_name: user?.full_name ?? null, ...counts }
    })
    .sort((a, b) => b.total - a.total || (a.user_id ?? 0) - (b.user_id ?? 0))

  const per_day: LeadCounts['per_day'] = []
  if (groups.firstDay !== null) {
    for (let day = Date.parse(groups.firstDay); day <= Date.parse(groups.lastDay); day += DAY_MS) {
      const date = new Date(day).toISOString().slice(0, 10)
      per_day.push({ date, created: groups.created.get(date) ?? 0, closed: groups.closed.get(date) ?? 0 })
    }
  }
  return {
    total,
    by_status: byStatus as Record<LeadStatus, number>,
    by_channel: byChannel as Record<LeadChannel, number>,
    by_assignee,
    conversion_rate: total === 0 ? 0 : (groups.byStatus.get('closed') ?? 0) / total,
    per_day,
  }
}

const utcDate = (date: Date) => date.toISOString().slice(0, 10)

/** The last day of per_day: the day before `before`, or today (UTC). */
function lastDayOf(range: { before?: Date }): string {
  return utcDate(new Date((range.before?.getTime() ?? Date.now() + 1) - 1))
}

// --- From the counters ---------------------------------------------------------------------------

/** The filters as conditions on a counters table (whose columns are named as those of leads). */
function counterConditions(
  actor: AuthenticatedActor,
  filter: LeadFilter,
  columns: { status: boolean; day: boolean },
): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [sql<SqlBool>`leads <> 0`, ...keyConditions(actor, filter)]
  if (columns.status && filter.status?.length) conditions.push(sql<SqlBool>`status = any(${filter.status})`)
  const range = statsRange(filter)
  if (columns.day && range.from) conditions.push(sql<SqlBool>`day >= ${utcDate(range.from)}::date`)
  if (columns.day && range.before) conditions.push(sql<SqlBool>`day < ${utcDate(range.before)}::date`)
  return conditions
}

const and = (conditions: Expression<SqlBool>[]) => sql.join(conditions, sql` and `)

interface GroupRow {
  status: LeadStatus | null
  channel: LeadChannel | null
  assigned_to: number | null
  date: string | null
  grouping: number
  total: number
  closed: number
}

export async function statsFromCounters(
  db: Database,
  actor: AuthenticatedActor,
  filter: LeadFilter,
): Promise<LeadCounts> {
  const range = statsRange(filter)
  const conditions = and(counterConditions(actor, filter, { status: true, day: true }))
  const sums = sql`sum(leads)::int as total, coalesce(sum(leads) filter (where status = 'closed'), 0)::int as closed`
  // grouping() has one bit per column (status, channel, assigned_to, day), set when the row does not group by it.
  const groupRows =
    range.from || range.before
      ? sql<GroupRow>`
          select status, channel, assigned_to, to_char(day, 'YYYY-MM-DD') as date,
            grouping(status, channel, assigned_to, day) as grouping, ${sums}
          from lead_counts where ${conditions}
          group by grouping sets ((status), (channel), (assigned_to), (day))`.execute(db)
      : // Without a creation range, the totals (a few rows, whatever the day) give the counts by status,
        // channel and assignee, and the daily counters only the per-day series: one statement, so
        // both are read at the same moment.
        sql<GroupRow>`
          select status, channel, assigned_to, null as date,
            grouping(status, channel, assigned_to) * 2 + 1 as grouping, ${sums}
          from lead_totals where ${conditions}
          group by grouping sets ((status), (channel), (assigned_to))
          union all
          select null, null, null, to_char(day, 'YYYY-MM-DD'), ${sql.lit(0b1110)}, ${sums}
          from lead_counts where ${conditions}
          group by day`.execute(db)

  const closedWanted = !filter.status?.length || filter.status.includes('closed')
  // Closed per day among the leads created in the range: by both days when there is a range.
  const closedQuery = !closedWanted
    ? Promise.resolve({ rows: [] })
    : range.from || range.before
      ? sql<{ date: string; closed: number }>`
          select to_char(closed_day, 'YYYY-MM-DD') as date, sum(leads)::int as closed from lead_closed_counts
          where ${and(counterConditions(actor, filter, { status: false, day: true }))}
          group by closed_day`.execute(db)
      : sql<{ date: string; closed: number }>`
          select to_char(closed_day, 'YYYY-MM-DD') as date, sum(leads)::int as closed from lead_closed_day_counts
          where ${and(counterConditions(actor, filter, { status: false, day: false }))}
          group by closed_day`.execute(db)

  const [groupResult, closedRows] = await Promise.all([groupRows, closedQuery])
  const groups: Groups = {
    byStatus: new Map(),
    byChannel: new Map(),
    byAssignee: new Map(),
    created: new Map(),
    closed: new Map(closedRows.rows.map((row) => [row.date, Number(row.closed)])),
    firstDay: range.from ? utcDate(range.from) : null,
    lastDay: lastDayOf(range),
  }
  for (const row of groupResult.rows) {
    const total = Number(row.total)
    if (total === 0) continue
    switch (Number(row.grouping)) {
      case 0b0111:
        groups.byStatus.set(row.status as LeadStatus, total)
        break
      case 0b1011:
        groups.byChannel.set(row.channel as LeadChannel, total)
        break
      case 0b1101:
        groups.byAssignee.set(row.assigned_to, { total, closed: Number(row.closed) })
        break
      case 0b1110:
        groups.created.set(row.date as string, total)
        if (!range.from && (groups.firstDay === null || (row.date as string) < groups.firstDay)) {
          groups.firstDay = row.date
        }
        break
    }
  }
  return assemble(db, groups)
}

// --- From a scan of the matching leads ------------------------------------------------------------

/** Counts by status, channel and assignee in one grouped scan, and a day-by-day series. */
export async function statsFromScan(db: Database, actor: AuthenticatedActor, filter: LeadFilter): Promise<LeadCounts> {
  const range = statsRange(filter)
  const matching = filteredLeads(db, actor, filter)
  const utcDay = (column: string) => sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD')`
  const rows = await db
    .with('matching', () =>
      matching.select([
        'leads.status',
        'leads.channel',
        'leads.assigned_to',
        utcDay('leads.created_at').as('created_day'),
        sql<string | null>`case when leads.status = 'closed' then ${utcDay('leads.status_changed_at')} end`.as(
          'closed_day',
        ),
      ]),
    )
    .selectFrom('matching')
    .select((eb) => [
      'matching.status',
      'matching.channel',
      'matching.assigned_to',
      'matching.created_day',
      'matching.closed_day',
      sql<number>`grouping(matching.status, matching.channel, matching.assigned_to, matching.created_day, matching.closed_day)`.as(
        'grouping',
      ),
      eb.fn.countAll<number>().as('total'),
      sql<number>`count(*) filter (where matching.status = 'closed')`.as('closed'),
    ])
    .groupBy(
      sql`grouping sets ((matching.status), (matching.channel), (matching.assigned_to), (matching.created_day), (matching.closed_day))`,
    )
    .execute()

  const groups: Groups = {
    byStatus: new Map(),
    byChannel: new Map(),
    byAssignee: new Map(),
    created: new Map(),
    closed: new Map(),
    firstDay: range.from ? utcDate(range.from) : null,
    lastDay: lastDayOf(range),
  }
  for (const row of rows) {
    const total = Number(row.total)
    switch (Number(row.grouping)) {
      case 0b01111:
        groups.byStatus.set(row.status, total)
        break
      case 0b10111:
        groups.byChannel.set(row.channel, total)
        break
      case 0b11011:
        groups.byAssignee.set(row.assigned_to, { total, closed: Number(row.closed) })
        break
      case 0b11101:
        groups.created.set(row.created_day, total)
        if (!range.from && (groups.firstDay === null || row.created_day < groups.firstDay)) {
          groups.firstDay = row.created_day
        }
        break
      case 0b11110:
        if (row.closed_day !== null) groups.closed.set(row.closed_day, total)
        break
    }
  }
  return assemble(db, groups)
}
