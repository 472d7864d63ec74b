-- migrate:up
-- GET /me/agenda lists the caller's own leads awaiting a first response (oldest first) and stale
-- ones, each with its count. By assignee and status alone, a seller with many leads made both read
-- every open lead of theirs from the table; these answer each from the index.
create index leads_awaiting_response_idx on leads (assigned_to, created_at, id)
  where deleted_at is null and first_response_at is null and status in ('new', 'contacted', 'quoted');
create index leads_assigned_stay_idx on leads (assigned_to, status, (greatest(status_changed_at, last_activity_at)))
  where deleted_at is null;

-- migrate:down
drop index leads_assigned_stay_idx;
drop index leads_awaiting_response_idx;
