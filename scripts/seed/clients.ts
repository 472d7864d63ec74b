import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../src/db/types.js'
import { bounds, flatten, type TimeWindow, timeSlice, timeWindow, total } from './draws.js'
import {
  BUILDINGS,
  COMPANY_FORMS,
  COMPANY_KINDS,
  COMPANY_NAMES,
  EMAIL_DOMAINS,
  FIRST_NAMES,
  PHONE_PLANS,
  STREETS,
  SURNAMES,
} from './words.js'

// A prime larger than any plan's count of numbers: n -> n * P mod size is then a bijection on 0..size-1.
// The smallest plan has 2e7 numbers, so the first 20 million sequence numbers never share a number.
const PHONE_MULTIPLIER = 2_147_483_647

export async function seedClients(
  conn: Kysely<DB>,
  count: number,
  batchSize: number,
  context: { creatorIds: number[]; progress: (done: number) => void },
): Promise<number> {
  if (count <= 0) return 0
  // Sequence numbers past every id so far: each one gives a number no earlier client got.
  const top = await sql<{ max: number | null }>`select max(id) as max from clients`.execute(conn)
  let next = (top.rows[0]?.max ?? 0) + 1
  const window = await timeWindow(conn, sql`now() - interval '730 days'`)
  let added = 0
  let emptyBatches = 0
  while (added < count) {
    const size = Math.min(batchSize, count - added)
    const inserted = await insertClients(conn, {
      from: next,
      to: next + size - 1,
      time: timeSlice(window, added, size, count),
      creatorIds: context.creatorIds,
    })
    next += size
    added += inserted
    // Numbers already taken (by clients made through the API) are skipped, and made up for here.
    emptyBatches = inserted === 0 ? emptyBatches + 1 : 0
    if (emptyBatches >= 3) throw new Error('Every generated phone number is already taken: giving up')
    context.progress(added)
  }
  return added
}

const plans = {
  bounds: bounds(PHONE_PLANS.map((plan) => plan.weight)),
  total: total(PHONE_PLANS.map((plan) => plan.weight)),
  prefixes: flatten(PHONE_PLANS.map((plan) => plan.prefixes)),
  digits: PHONE_PLANS.map((plan) => plan.digits),
  space: PHONE_PLANS.map((plan) => 10 ** plan.digits),
  cities: flatten(PHONE_PLANS.map((plan) => plan.cities)),
}

async function insertClients(
  conn: Kysely<DB>,
  batch: { from: number; to: number; time: TimeWindow; creatorIds: number[] },
): Promise<number> {
  const { from, to, time, creatorIds } = batch
  const pick = (list: string[], random: string) =>
    sql`(${list}::text[])[1 + floor(${sql.ref(random)} * ${list.length})::int]`
  const slug = (text: RawBuilder<unknown>) => sql`regexp_replace(immutable_unaccent(lower(${text})), '[^a-z]', '', 'g')`
  const result = await sql<{ inserted: number }>`
    with drawn as (
      -- One random draw a column, made here so that the columns below agree with each other.
      select g.n,
        width_bucket(random() * ${plans.total}, ${plans.bounds}::float8[]) as plan,
        random() as r_first, random() as r_surname1, random() as r_surname2, random() as r_two_surnames,
        random() as r_type, random() as r_kind, random() as r_company, random() as r_company_form,
        random() as r_company_own, random() as r_email, random() as r_email_form, random() as r_domain,
        random() as r_address, random() as r_street, random() as r_building, random() as r_number,
        random() as r_city, random() as r_created, random() as r_updated, random() as r_updated_at,
        random() as r_creator, random() as r_creator_id
      from generate_series(${from}::int8, ${to}::int8) as g(n)
    ),
    numbered as (
      select d.*,
        (d.n * ${PHONE_MULTIPLIER}::int8)
          % ((${plans.prefixes.counts}::int8[])[d.plan] * (${plans.space}::int8[])[d.plan]) as k,
        ${pick(FIRST_NAMES, 'r_first')} as first_name,
        ${pick(SURNAMES, 'r_surname1')} as surname1,
        ${pick(SURNAMES, 'r_surname2')} as surname2,
        ${time.start}::timestamptz + d.r_created * (${time.end}::timestamptz - ${time.start}::timestamptz) as created_at
      from drawn d
    ),
    shaped as (
      select u.*,
        '+' || (${plans.prefixes.items}::text[])[(${plans.prefixes.starts}::int[])[u.plan]
          + (u.k / (${plans.space}::int8[])[u.plan])::int]
          || lpad((u.k % (${plans.space}::int8[])[u.plan])::text, (${plans.digits}::int[])[u.plan], '0') as phone,
        u.first_name || ' ' || u.surname1 || case when u.r_two_surnames < 0.6 then ' ' || u.surname2 else '' end
          as contact_name,
        case when u.r_type < 0.2 then 'juridical' else 'natural' end::client_type as client_type,
        (${plans.cities.items}::text[])[(${plans.cities.starts}::int[])[u.plan]
          + floor(u.r_city * (${plans.cities.counts}::int[])[u.plan])::int] as city
      from numbered u
    ),
    inserted as (
      insert into clients (client_type, contact_name, company_name, phone, email, address, created_by, created_at, updated_at)
      select s.client_type, s.contact_name,
        case when s.client_type = 'juridical' then
          ${pick(COMPANY_KINDS, 'r_kind')} || ' '
            || case when s.r_company_own < 0.4 then s.surname1 else ${pick(COMPANY_NAMES, 'r_company')} end
            || ' ' || ${pick(COMPANY_FORMS, 'r_company_form')}
        end,
        s.phone,
        case when s.r_email < 0.6 then
          ${slug(sql`split_part(s.first_name, ' ', 1)`)}
            || case when s.r_email_form < 0.5 then '.' else '_' end
            || ${slug(sql`s.surname1`)} || s.n || '@' || ${pick(EMAIL_DOMAINS, 'r_domain')}
        end,
        case when s.r_address < 0.45 then
          ${pick(STREETS, 'r_street')} || ', '
            || case when s.r_building < 0.5 then 'casa nro. ' || (1 + floor(s.r_number * 250))::int
              else ${pick(BUILDINGS, 'r_building')} || ', piso ' || (1 + floor(s.r_number * 15))::int end
            || ', ' || s.city
        end,
        case when s.r_creator >= 0.3 then (${creatorIds}::int[])[1 + floor(s.r_creator_id * ${creatorIds.length})::int] end,
        s.created_at,
        case when s.r_updated < 0.6 then s.created_at
          else s.created_at + s.r_updated_at * least(interval '90 days', now() - s.created_at) end
      from shaped s
      order by s.created_at
      -- Only a safety net: the numbers are made unique above.
      on conflict do nothing
      returning *
    ),
    audit as (
      insert into audit_logs (table_name, record_id, action, old_values, new_values, user_id, username, request_id)
      select 'clients', id, 'create', null, to_jsonb(inserted) - 'search_text' - 'search_vector', null, 'seed', null from inserted
    )
    select count(*)::int as inserted from inserted`.execute(conn)
  return result.rows[0]?.inserted ?? 0
}
