-- migrate:up
-- The trash: deleting a client or a lead sets deleted_at (and who did it) instead of removing the
-- row; every read skips such rows, restore clears the mark, purge removes the row for good.
alter type audit_action add value if not exists 'restore';
alter type audit_action add value if not exists 'merge';
alter type audit_action add value if not exists 'purge';

alter table clients
  add column deleted_at timestamptz,
  add column deleted_by integer references users (id) on delete set null;
alter table leads
  add column deleted_at timestamptz,
  add column deleted_by integer references users (id) on delete set null;

-- One client per phone among the live ones: a trashed client's phone is free for a new client.
-- Same name as before, so that the code recognising its violation stays unchanged.
drop index clients_phone_key;
create unique index clients_phone_key on clients (phone) where deleted_at is null;

-- GET /trash (newest first) and the purge after TRASH_RETENTION_DAYS read only trashed rows.
create index clients_trash_idx on clients (deleted_at, id) where deleted_at is not null;
create index leads_trash_idx on leads (deleted_at, id) where deleted_at is not null;

-- The counters count live leads only: trashing a lead (an update setting deleted_at) takes it out
-- of its keys, restoring puts it back, and purging a trashed lead changes nothing.
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

-- migrate:down
-- Trashed rows go for good: the schema without a trash cannot hold them. audit_action keeps its
-- new values (PostgreSQL cannot drop an enum value).
delete from leads where deleted_at is not null;
delete from clients where deleted_at is not null;
create or replace function lead_counts_apply(added leads[], removed leads[]) returns void
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
drop index leads_trash_idx;
drop index clients_trash_idx;
drop index clients_phone_key;
create unique index clients_phone_key on clients (phone);
alter table leads drop column deleted_by, drop column deleted_at;
alter table clients drop column deleted_by, drop column deleted_at;
