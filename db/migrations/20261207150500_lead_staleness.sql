-- migrate:up
-- A lead is stale when its stay (since the later of its status change and its last activity) is longer
-- than stale_after of its status in pipeline_settings. last_activity_at is kept by the writer of the
-- timeline, in the transaction of each activity; status_change and assignment rows do not count (the
-- first is status_changed_at itself, the second hands the lead over without working it).
-- stale_published_for is the start of the stay whose lead.stale event was written: one event a stay.
alter table leads
  add column last_activity_at timestamptz,
  add column stale_published_for timestamptz;

update leads set last_activity_at = latest.at
  from (
    select lead_id, least(max(occurred_at), now()) as at
      from lead_activities
      where type not in ('status_change', 'assignment')
      group by lead_id
  ) latest
  where latest.lead_id = leads.id;

-- GET /leads?stale=true compares the stay of each open status with its own threshold.
create index leads_stay_idx on leads (status, (greatest(status_changed_at, last_activity_at)))
  where deleted_at is null;

-- migrate:down
drop index leads_stay_idx;
alter table leads
  drop column stale_published_for,
  drop column last_activity_at;
