-- migrate:up
-- Lead totals by status, channel and assignee, whatever the day: GET /leads/stats without a
-- creation range sums these few rows instead of grouping every day's counters. Kept by the same
-- trigger function as the other counters, in the transaction of every lead change.
create table lead_totals (
  status lead_status not null,
  channel lead_channel not null,
  assigned_to integer,
  shard smallint not null,
  leads integer not null,
  constraint lead_totals_key unique nulls not distinct (status, channel, assigned_to, shard)
);

create or replace function lead_counts_apply(added leads[], removed leads[]) returns void
language sql as $$
  with changes as (
    select utc_day(l.created_at) as day, l.status, l.channel, l.assigned_to,
           case when l.status = 'closed' then utc_day(l.status_changed_at) end as closed_day,
           1 as delta
    from unnest(added) as l
    where l.deleted_at is null
    union all
    select utc_day(l.created_at), l.status, l.channel, l.assigned_to,
           case when l.status = 'closed' then utc_day(l.status_changed_at) end,
           -1
    from unnest(removed) as l
    where l.deleted_at is null
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
  ),
  totals as (
    insert into lead_totals as c (status, channel, assigned_to, shard, leads)
    select status, channel, assigned_to, pg_backend_pid() % 4, sum(delta)
    from changes
    group by status, channel, assigned_to
    having sum(delta) <> 0
    order by status, channel, assigned_to
    on conflict on constraint lead_totals_key do update set leads = c.leads + excluded.leads
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

-- The leads already there, from their daily counters.
insert into lead_totals (status, channel, assigned_to, shard, leads)
select status, channel, assigned_to, 0, sum(leads)
from lead_counts group by 1, 2, 3 having sum(leads) <> 0;

-- migrate:down
create or replace function lead_counts_apply(added leads[], removed leads[]) returns void
language sql as $$
  with changes as (
    select utc_day(l.created_at) as day, l.status, l.channel, l.assigned_to,
           case when l.status = 'closed' then utc_day(l.status_changed_at) end as closed_day,
           1 as delta
    from unnest(added) as l
    where l.deleted_at is null
    union all
    select utc_day(l.created_at), l.status, l.channel, l.assigned_to,
           case when l.status = 'closed' then utc_day(l.status_changed_at) end,
           -1
    from unnest(removed) as l
    where l.deleted_at is null
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

drop table lead_totals;
