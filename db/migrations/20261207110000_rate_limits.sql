-- migrate:up
-- Requests per user and per API key in the current minute, shared by every instance.
create table request_counts (
  key text primary key,
  requests integer not null,
  window_started_at timestamptz not null
);
-- A key's own limit, instead of RATE_LIMIT_PER_MINUTE.
alter table api_keys add column rate_limit_per_minute integer check (rate_limit_per_minute > 0);

-- migrate:down
alter table api_keys drop column rate_limit_per_minute;
drop table request_counts;
