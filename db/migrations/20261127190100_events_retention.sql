-- migrate:up
-- The purge of old events (src/events/retention.ts) finds them by age; webhook deliveries and
-- notifications are deleted with their event, so their foreign keys need an index each.
create index events_occurred_at_idx on events (occurred_at);
create index webhook_deliveries_event_idx on webhook_deliveries (event_id);
create index notifications_event_idx on notifications (event_id);

-- migrate:down
drop index notifications_event_idx;
drop index webhook_deliveries_event_idx;
drop index events_occurred_at_idx;
