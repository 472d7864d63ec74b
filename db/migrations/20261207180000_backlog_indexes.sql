-- migrate:up
-- GET /metrics reads the age of the oldest undelivered event at every scrape: per webhook, its
-- oldest pending delivery, and the oldest mail still to send for an event, each one index entry.
create index webhook_deliveries_pending_event_idx on webhook_deliveries (webhook_id, event_id)
  where state = 'pending';
create index notifications_pending_event_idx on notifications (event_id)
  where state in ('pending', 'sending') and event_id is not null;

-- migrate:down
drop index notifications_pending_event_idx;
drop index webhook_deliveries_pending_event_idx;
