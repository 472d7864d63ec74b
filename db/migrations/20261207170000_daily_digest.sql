-- migrate:up
-- The morning digest is asked for: off until the user turns it on.
alter table users add column notify_daily_digest boolean not null default false;

-- migrate:down
alter table users drop column notify_daily_digest;
