-- migrate:up
-- Response times of GET /leads/stats without scanning every lead: a histogram of response_seconds
-- kept by the counters' trigger, and indexes to read, inside one bucket, the exact value at a rank.
-- See "Lead counters" in docs/architecture.md.

-- Fixed integer bounds [lo, hi): one bucket a second under 100 s, then each 2% wider than the last,
-- up to the largest integer; bucket -1 holds the negative spans (a first response dated before the
-- lead). Buckets are numbered in the order of their values.
create table response_bucket_bounds (
  bucket smallint primary key,
  lo bigint not null unique,
  hi bigint not null
);
insert into response_bucket_bounds (bucket, lo, hi)
with recursive bounds (bucket, lo, hi) as (
  select 0, 0::bigint, 1::bigint
  union all
  select bucket + 1, hi, least(2147483648, hi + greatest(1, hi / 50))
  from bounds where hi < 2147483648
)
select bucket, lo, hi from bounds
union all
select -1, -2147483648, 0;

-- Live leads by channel, assignee and bucket of response_seconds; bucket null counts the open leads
-- (new, contacted, quoted: OPEN_LEAD_STATUSES) not answered yet, the `waiting` of the stats.
create table lead_response_buckets (
  channel lead_channel not null,
  assigned_to integer,
  bucket smallint,
  shard smallint not null,
  leads integer not null,
  constraint lead_response_buckets_key unique nulls not distinct (channel, assigned_to, bucket, shard)
);
create index lead_response_buckets_assigned_idx on lead_response_buckets (assigned_to);

-- The value at a rank inside one bucket, overall, of a channel, of an assignee: an index range scan,
-- index-only (the other filters' columns are included).
create index leads_response_seconds_idx on leads (response_seconds) include (channel, assigned_to)
  where deleted_at is null and response_seconds is not null;
create index leads_channel_response_seconds_idx on leads (channel, response_seconds) include (assigned_to)
  where deleted_at is null and response_seconds is not null;
create index leads_assigned_response_seconds_idx on leads (assigned_to, response_seconds) include (channel)
  where deleted_at is null and response_seconds is not null;

-- The stats of a creation range (or any filter the histogram cannot answer) scan the matching leads:
-- led by created_at and holding every column that scan reads, a month is an index-only range scan.
create index leads_created_response_idx on leads (created_at)
  include (channel, assigned_to, status, response_seconds)
  where deleted_at is null;

create function lead_response_buckets_apply(added leads[], removed leads[]) returns void
language sql as $$
  with changes as (
    select l.channel, l.assigned_to, l.response_seconds, l.status, 1 as delta
    from unnest(added) as l
    where l.deleted_at is null
    union all
    select l.channel, l.assigned_to, l.response_seconds, l.status, -1
    from unnest(removed) as l
    where l.deleted_at is null
  ),
  keyed as (
    select c.channel, c.assigned_to, b.bucket, c.delta
    from changes c
    cross join lateral (
      select bucket from response_bucket_bounds where lo <= c.response_seconds order by lo desc limit 1
    ) b
    where c.response_seconds is not null
    union all
    select channel, assigned_to, null, delta
    from changes
    where response_seconds is null and status in ('new', 'contacted', 'quoted')
  )
  insert into lead_response_buckets as c (channel, assigned_to, bucket, shard, leads)
  select channel, assigned_to, bucket, pg_backend_pid() % 4, sum(delta)
  from keyed
  group by channel, assigned_to, bucket
  having sum(delta) <> 0
  order by channel, assigned_to, bucket
  on conflict on constraint lead_response_buckets_key do update set leads = c.leads + excluded.leads;
$$;

-- The same trigger as the other counters, in the same transaction: every writer of leads (routes,
-- bulk actions, imports and their undo, merges, the trash, purges, cascades) keeps the histogram.
create or replace function leads_keep_counts() returns trigger
language plpgsql as $$
declare
  added leads[] := '{}';
  removed leads[] := '{}';
begin
  if tg_op in ('INSERT', 'UPDATE') then
    added := array(select n::leads from new_rows as n);
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    removed := array(select o::leads from old_rows as o);
  end if;
  perform lead_counts_apply(added, removed);
  perform lead_response_buckets_apply(added, removed);
  return null;
end
$$;

-- The leads already there: each distinct response time once, then its bucket.
insert into lead_response_buckets (channel, assigned_to, bucket, shard, leads)
select t.channel, t.assigned_to, b.bucket, 0, sum(t.leads)
from (
  select channel, assigned_to, response_seconds, count(*) as leads
  from leads
  where deleted_at is null and response_seconds is not null
  group by 1, 2, 3
) t
cross join lateral (
  select bucket from response_bucket_bounds where lo <= t.response_seconds order by lo desc limit 1
) b
group by 1, 2, 3;

insert into lead_response_buckets (channel, assigned_to, bucket, shard, leads)
select channel, assigned_to, null, 0, count(*)
from leads
where deleted_at is null and response_seconds is null and status in ('new', 'contacted', 'quoted')
group by 1, 2;

-- migrate:down
create or replace function leads_keep_counts() returns trigger
language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    perform lead_counts_apply(array(select n::leads from new_rows as n), '{}');
  elsif tg_op = 'UPDATE' then
    perform lead_counts_apply(array(select n::leads from new_rows as n), array(select o::leads from old_rows as o));
  else
    perform lead_counts_apply('{}', array(select o::leads from old_rows as o));
  end if;
  return null;
end
$$;
drop function lead_response_buckets_apply(leads[], leads[]);
drop index leads_created_response_idx;
drop index leads_assigned_response_seconds_idx;
drop index leads_channel_response_seconds_idx;
drop index leads_response_seconds_idx;
drop table lead_response_buckets;
drop table response_bucket_bounds;
