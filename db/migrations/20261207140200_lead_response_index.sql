-- migrate:up
-- The response-time stats read, of every matching live lead, only these columns, grouped by channel:
-- an index holding them all lets that scan skip the table (an index-only scan).
create index leads_response_times_idx on leads (channel) include (assigned_to, status, response_seconds, created_at)
  where deleted_at is null;

-- migrate:down
drop index leads_response_times_idx;
