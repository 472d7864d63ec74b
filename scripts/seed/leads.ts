import { type Kysely, sql } from 'kysely'
import { LEAD_CHANNELS, LEAD_STATUSES } from '../../src/db/enums.js'
import type { DB } from '../../src/db/types.js'
import { bounds, flatten, type TimeWindow, timeSlice, timeWindow, total } from './draws.js'
import { ADMIN_NOTES, CHANNEL_SHARE, OLDER_STATUS_SHARE, RECENT_STATUS_SHARE, SALES_NOTES } from './words.js'

// In the order of the database's enum types, which the statement below indexes (1-based).
const CHANNEL_WEIGHTS = LEAD_CHANNELS.map((channel) => CHANNEL_SHARE[channel])
const RECENT_STATUS_WEIGHTS = LEAD_STATUSES.map((status) => RECENT_STATUS_SHARE[status])
const OLDER_STATUS_WEIGHTS = LEAD_STATUSES.map((status) => OLDER_STATUS_SHARE[status])

export async function seedLeads(
  conn: Kysely<DB>,
  count: number,
  batchSize: number,
  context: { salesIds: number[]; creatorIds: number[]; progress: (done: number) => void },
): Promise<number> {
  if (count <= 0) return 0
  await sql`drop table if exists pg_temp.seed_demo_clients, pg_temp.seed_demo_days`.execute(conn)
  try {
    // The clients numbered in the order they were created, and for each day how many existed by its
    // end: a lead of that day picks a number in 1..that many, so its client is one present, created
    // before it, whatever the gaps in the ids.
    await sql`
      create temp table seed_demo_clients as
      select (row_number() over (order by created_at, id))::int as rn, id, created_at from clients`.execute(conn)
    await sql`alter table seed_demo_clients add primary key (rn)`.execute(conn)
    await sql`
      create temp table seed_demo_days as
      select g.day::date as day, max(p.upto) over (order by g.day) as upto
      from generate_series((select min(created_at)::date from seed_demo_clients), current_date, interval '1 day') as g(day)
      left join (select created_at::date as day, max(rn) as upto from seed_demo_clients group by 1) p
        on p.day = g.day::date`.execute(conn)
    await sql`alter table seed_demo_days add primary key (day)`.execute(conn)
    await sql`analyze seed_demo_clients`.execute(conn)
    await sql`analyze seed_demo_days`.execute(conn)
    const first = await sql<{ first: Date | null }>`select min(created_at) as first from seed_demo_clients`.execute(
      conn,
    )
    const firstClient = first.rows[0]?.first
    if (!firstClient) throw new Error('There are no clients to give leads to: seed some clients first')
    // The last 18 months, or less when the first client is younger than that.
    const window = await timeWindow(conn, sql`greatest(now() - interval '548 days', ${firstClient}::timestamptz)`)
    let added = 0
    while (added < count) {
      const size = Math.min(batchSize, count - added)
      added += await insertLeads(conn, { size, time: timeSlice(window, added, size, count), ...context })
      context.progress(added)
    }
    return added
  } finally {
    await sql`drop table if exists pg_temp.seed_demo_clients, pg_temp.seed_demo_days`.execute(conn)
  }
}

const salesNotes = flatten(LEAD_STATUSES.map((status) => SALES_NOTES[status]))

async function insertLeads(
  conn: Kysely<DB>,
  batch: { size: number; time: TimeWindow; salesIds: number[]; creatorIds: number[] },
): Promise<number> {
  const { size, time, salesIds, creatorIds } = batch
  const result = await sql<{ inserted: number }>`
    with drawn as (
      select ${time.start}::timestamptz + random() * (${time.end}::timestamptz - ${time.start}::timestamptz) as at,
        random() as r_client,
        width_bucket(random() * ${total(CHANNEL_WEIGHTS)}, ${bounds(CHANNEL_WEIGHTS)}::float8[]) as channel_index,
        random() as r_status, random() as r_changed, random() as r_updated,
        random() as r_updated_at, random() as r_assigned, random() as r_assignee, random() as r_sales_note,
        random() as r_sales_note_text, random() as r_admin_note, random() as r_admin_note_text,
        random() as r_creator, random() as r_creator_id, random() as r_answered, random() as r_response
      from generate_series(1, ${size}::int) as g(i)
    ),
    dated as (
      -- A client that existed on the lead's day; on that very day the lead waits for its client.
      select d.*, c.id as client_id, greatest(d.at, c.created_at) as created_at
      from drawn d
      join seed_demo_days day on day.day = d.at::date
      join seed_demo_clients c on c.rn = 1 + floor(d.r_client * day.upto)::int
    ),
    classified as (
      select c.*,
        case when c.created_at > now() - interval '30 days'
          then width_bucket(c.r_status * ${total(RECENT_STATUS_WEIGHTS)}, ${bounds(RECENT_STATUS_WEIGHTS)}::float8[])
          else width_bucket(c.r_status * ${total(OLDER_STATUS_WEIGHTS)}, ${bounds(OLDER_STATUS_WEIGHTS)}::float8[])
        end as status_index
      from dated c
    ),
    changed as (
      -- A lead moves on within days, seldom after more than a month.
      select s.*,
        case when s.status_index = 1 then s.created_at
          else s.created_at + s.r_changed * s.r_changed * least(interval '45 days', now() - s.created_at) end
          as status_changed_at
      from classified s
    ),
    answered as (
      -- Most leads past \`new\` were answered, at the latest when they left it; a few \`new\` ones were too.
      -- The delay spreads from seconds to days (log-uniform, 5 s to 10 days); a few leads never got one.
      select c.*,
        case when c.r_answered < case when c.status_index = 1 then 0.15 else 0.95 end then
          least(c.created_at + make_interval(secs => floor(exp(ln(5) + c.r_response * ln(172800)))),
            case when c.status_index = 1 then now() else c.status_changed_at end)
        end as first_response_at
      from changed c
    ),
    inserted as (
      insert into leads (client_id, channel, status, admin_notes, sales_notes, assigned_to, created_by, created_at,
        updated_at, status_changed_at, first_response_at)
      select l.client_id,
        (${LEAD_CHANNELS}::lead_channel[])[l.channel_index],
        (${LEAD_STATUSES}::lead_status[])[l.status_index],
        case when l.r_admin_note < 0.12 then
          (${ADMIN_NOTES}::text[])[1 + floor(l.r_admin_note_text * ${ADMIN_NOTES.length})::int]
        end,
        case when l.r_sales_note < case when l.status_index = 1 then 0.2 else 0.6 end then
          (${salesNotes.items}::text[])[(${salesNotes.starts}::int[])[l.status_index]
            + floor(l.r_sales_note_text * (${salesNotes.counts}::int[])[l.status_index])::int]
        end,
        case when l.r_assigned < 0.8 then (${salesIds}::int[])[1 + floor(l.r_assignee * ${salesIds.length})::int] end,
        case when l.r_creator >= 0.3 then
          (${creatorIds}::int[])[1 + floor(l.r_creator_id * ${creatorIds.length})::int]
        end,
        l.created_at,
        case when l.r_updated < 0.5 then l.status_changed_at
          else l.status_changed_at + l.r_updated_at * least(interval '20 days', now() - l.status_changed_at) end,
        l.status_changed_at,
        l.first_response_at
      from answered l
      order by l.created_at
      returning *
    ),
    audit as (
      insert into audit_logs (table_name, record_id, action, old_values, new_values, user_id, username, request_id)
      select 'leads', id, 'create', null, to_jsonb(inserted) - 'search_vector', null, 'seed', null from inserted
    )
    select count(*)::int as inserted from inserted`.execute(conn)
  return result.rows[0]?.inserted ?? 0
}
