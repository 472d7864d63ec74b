-- migrate:up
-- Counters behind GET /leads/stats, kept by a trigger in the transaction of every change to leads,
-- whatever made it (a route, a cascade, a user's deletion, and later bulk actions, imports,
-- merges and the trash): see "Lead counters" in docs/architecture.md.
--
-- `shard` spreads concurrent writers of the same key over a few rows (by backend), so that
-- parallel inserts of today's leads do not queue on one row lock; readers sum the shards.

-- Every lead, by the UTC day it was created: totals, by status, channel, assignee, created per day.
create table lead_counts (
  day date not null,
  status lead_status not null,
  channel lead_channel not null,
  assigned_to integer,
  shard smallint not null,
  leads integer not null,
  constraint lead_counts_key unique nulls not distinct (day, status, channel, assigned_to, shard)
);
create index lead_counts_assigned_day_idx on lead_counts (assigned_to, day);

-- Closed leads by the UTC day they were closed and the day they were created: closed per day
-- among the leads created in a range.
create table lead_closed_counts (
  closed_day date not null,
  day date not null,
  channel lead_channel not null,
  assigned_to integer,
  shard smallint not null,
  leads integer not null,
  constraint lead_closed_counts_key unique nulls not distinct (day, closed_day, channel, assigned_to, shard)
);
create index lead_closed_counts_assigned_day_idx on lead_closed_counts (assigned_to, day);

-- Closed leads by the UTC day they were closed: closed per day when no creation range is asked.
create table lead_closed_day_counts (
  closed_day date not null,
  channel lead_channel not null,
  assigned_to integer,
  shard smallint not null,
  leads integer not null,
  constraint lead_closed_day_counts_key unique nulls not distinct (closed_day, channel, assigned_to, shard)
);
create index lead_closed_day_counts_assigned_idx on lead_closed_day_counts (assigned_to, closed_day);

create function utc_day(value timestamptz) returns date
language sql immutable parallel safe strict
as $$ select (value at time zone 'UTC')::date $$;

-- Adds the leads of `added` and takes away those of `removed`, key by key; keys whose change nets
-- to zero (an edit of notes) are not written. Keys are written in order, so two transactions lock
-- the counter rows they share in the same order.
create function lead_counts_apply(added leads[], removed leads[]) returns void
language sql as $$
  with changes as (
    select utc_day(l.created_at) as day, l.status, l.channel, l.assigned_to,
           case when l.status = 'closed' then utc_day(l.status_changed_at) end as closed_day,
           1 as delta
    from unnest(added) as l
    union all
    select utc_day(l.created_at), l.status, l.channel, l.assigned_to,
           case when l.status = 'closed' then utc_day(l.status_changed_at) end,
           -1
    from unnest(removed) as l
  ),
  by_created_day as (
    insert into lead_counts as c (day, status, channel, assigned_to, shard, leads)
    select day, status, channel, assigned_to, pg_backend_pid() % 4, sum(delta)
    from changes
    group by day, status, channel, assigned_to
    having sum(delta) <> 0
    order by day, status, channel, assigned_to
    on conflict on constraint lead_counts_key do update set leads = c.leads + excluded.leads
  ),
  closed_by_both_days as (
    insert into lead_closed_counts as c (day, closed_day, channel, assigned_to, shard, leads)
    select day, closed_day, channel, assigned_to, pg_backend_pid() % 4, sum(delta)
    from changes
    where closed_day is not null
    group by day, closed_day, channel, assigned_to
    having sum(delta) <> 0
    order by day, closed_day, channel, assigned_to
    on conflict on constraint lead_closed_counts_key do update set leads = c.leads + excluded.leads
  )
  insert into lead_closed_day_counts as c (closed_day, channel, assigned_to, shard, leads)
  select closed_day, channel, assigned_to, pg_backend_pid() % 4, sum(delta)
  from changes
  where closed_day is not null
  group by closed_day, channel, assigned_to
  having sum(delta) <> 0
  order by closed_day, channel, assigned_to
  on conflict on constraint lead_closed_day_counts_key do update set leads = c.leads + excluded.leads;
$$;

-- Statement-level: a statement that changes many leads (a cascade, an unassignment) writes each
-- counter once.
create function leads_keep_counts() returns trigger
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

create trigger leads_count_inserts after insert on leads
  referencing new table as new_rows for each statement execute function leads_keep_counts();
create trigger leads_count_updates after update on leads
  referencing old table as old_rows new table as new_rows for each statement execute function leads_keep_counts();
create trigger leads_count_deletes after delete on leads
  referencing old table as old_rows for each statement execute function leads_keep_counts();

-- The leads already there.
insert into lead_counts (day, status, channel, assigned_to, shard, leads)
select utc_day(created_at), status, channel, assigned_to, 0, count(*)
from leads group by 1, 2, 3, 4;

insert into lead_closed_counts (day, closed_day, channel, assigned_to, shard, leads)
select utc_day(created_at), utc_day(status_changed_at), channel, assigned_to, 0, count(*)
from leads where status = 'closed' group by 1, 2, 3, 4;

insert into lead_closed_day_counts (closed_day, channel, assigned_to, shard, leads)
select utc_day(status_changed_at), channel, assigned_to, 0, count(*)
from leads where status = 'closed' group by 1, 2, 3;

-- migrate:down
drop trigger leads_count_deletes on leads;
drop trigger leads_count_updates on leads;
drop trigger leads_count_inserts on leads;
drop function leads_keep_counts();
drop function lead_counts_apply(leads[], leads[]);
drop function utc_day(timestamptz);
drop table lead_closed_day_counts;
drop table lead_closed_counts;
drop table lead_counts;
