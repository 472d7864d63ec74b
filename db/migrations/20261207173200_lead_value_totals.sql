-- migrate:up
-- Deal values behind the `value` block of GET /leads/stats, kept like the lead counters (see
-- 20261127120100_lead_counts.sql) by a trigger in the transaction of every change to leads,
-- whatever made it. Amounts are summed as numeric, per currency: never across two of them.

-- Live leads by status, channel, assignee and currency: how many, how many have an amount, and
-- the sum of their amounts.
create table lead_value_totals (
  status lead_status not null,
  channel lead_channel not null,
  assigned_to integer,
  currency text not null,
  shard smallint not null,
  leads integer not null,
  priced integer not null,
  amount numeric not null,
  constraint lead_value_totals_key unique nulls not distinct (status, channel, assigned_to, currency, shard)
);

-- Closed (won) live leads by the UTC month they were closed (its first day).
create table lead_won_month_totals (
  month date not null,
  channel lead_channel not null,
  assigned_to integer,
  currency text not null,
  shard smallint not null,
  leads integer not null,
  priced integer not null,
  amount numeric not null,
  constraint lead_won_month_totals_key unique nulls not distinct (month, channel, assigned_to, currency, shard)
);

create function utc_month(value timestamptz) returns date
language sql immutable parallel safe strict
as $$ select date_trunc('month', value at time zone 'UTC')::date $$;

-- Adds the leads of `added` and takes away those of `removed`; keys whose change nets to zero (an
-- edit of notes) are not written, and keys are written in order, as lead_counts_apply does.
create function lead_values_apply(added leads[], removed leads[]) returns void
language sql as $$
  with changes as (
    select l.status, l.channel, l.assigned_to, l.currency, l.amount,
           case when l.status = 'closed' then utc_month(l.status_changed_at) end as won_month,
           1 as delta
    from unnest(added) as l
    where l.deleted_at is null
    union all
    select l.status, l.channel, l.assigned_to, l.currency, l.amount,
           case when l.status = 'closed' then utc_month(l.status_changed_at) end,
           -1
    from unnest(removed) as l
    where l.deleted_at is null
  ),
  totals as (
    insert into lead_value_totals as c (status, channel, assigned_to, currency, shard, leads, priced, amount)
    select status, channel, assigned_to, currency, pg_backend_pid() % 4, sum(delta),
           coalesce(sum(delta) filter (where amount is not null), 0), coalesce(sum(delta * amount), 0)
    from changes
    group by status, channel, assigned_to, currency
    having sum(delta) <> 0 or coalesce(sum(delta) filter (where amount is not null), 0) <> 0
        or coalesce(sum(delta * amount), 0) <> 0
    order by status, channel, assigned_to, currency
    on conflict on constraint lead_value_totals_key do update
      set leads = c.leads + excluded.leads, priced = c.priced + excluded.priced, amount = c.amount + excluded.amount
  )
  insert into lead_won_month_totals as c (month, channel, assigned_to, currency, shard, leads, priced, amount)
  select won_month, channel, assigned_to, currency, pg_backend_pid() % 4, sum(delta),
         coalesce(sum(delta) filter (where amount is not null), 0), coalesce(sum(delta * amount), 0)
  from changes
  where won_month is not null
  group by won_month, channel, assigned_to, currency
  having sum(delta) <> 0 or coalesce(sum(delta) filter (where amount is not null), 0) <> 0
      or coalesce(sum(delta * amount), 0) <> 0
  order by won_month, channel, assigned_to, currency
  on conflict on constraint lead_won_month_totals_key do update
    set leads = c.leads + excluded.leads, priced = c.priced + excluded.priced, amount = c.amount + excluded.amount;
$$;

create function leads_keep_values() returns trigger
language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    perform lead_values_apply(array(select n::leads from new_rows as n), '{}');
  elsif tg_op = 'UPDATE' then
    perform lead_values_apply(array(select n::leads from new_rows as n), array(select o::leads from old_rows as o));
  else
    perform lead_values_apply('{}', array(select o::leads from old_rows as o));
  end if;
  return null;
end
$$;

create trigger leads_value_inserts after insert on leads
  referencing new table as new_rows for each statement execute function leads_keep_values();
create trigger leads_value_updates after update on leads
  referencing old table as old_rows new table as new_rows for each statement execute function leads_keep_values();
create trigger leads_value_deletes after delete on leads
  referencing old table as old_rows for each statement execute function leads_keep_values();

-- The leads already there.
insert into lead_value_totals (status, channel, assigned_to, currency, shard, leads, priced, amount)
select status, channel, assigned_to, currency, 0, count(*), count(amount), coalesce(sum(amount), 0)
from leads where deleted_at is null group by 1, 2, 3, 4;

insert into lead_won_month_totals (month, channel, assigned_to, currency, shard, leads, priced, amount)
select utc_month(status_changed_at), channel, assigned_to, currency, 0, count(*), count(amount), coalesce(sum(amount), 0)
from leads where deleted_at is null and status = 'closed' group by 1, 2, 3, 4;

-- migrate:down
drop trigger leads_value_deletes on leads;
drop trigger leads_value_updates on leads;
drop trigger leads_value_inserts on leads;
drop function leads_keep_values();
drop function lead_values_apply(leads[], leads[]);
drop function utc_month(timestamptz);
drop table lead_won_month_totals;
drop table lead_value_totals;
