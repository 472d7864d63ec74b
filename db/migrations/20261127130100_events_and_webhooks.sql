-- migrate:up

-- The outbox: one row per committed change, written in the change's own transaction.
create table events (
  id bigint generated always as identity primary key,
  -- The id consumers see (and webhook-id): opaque, so it reveals no count of changes.
  public_id text not null default ('evt_' || replace(gen_random_uuid()::text, '-', '')),
  type text not null,
  occurred_at timestamptz not null default now(),
  -- {type, id, name}: a user, an API key, a web form, WhatsApp or the system.
  actor jsonb not null,
  -- The changed resource ('lead:42'): deliveries of one resource keep their order.
  resource_key text not null,
  -- {id, old, new, object}
  data jsonb not null,
  request_id text,
  -- Set once the event is fanned out to its deliveries and notifications.
  dispatched_at timestamptz
);
create unique index events_public_id_key on events (public_id);
create index events_undispatched_idx on events (id) where dispatched_at is null;

create table webhooks (
  id integer generated always as identity primary key,
  url text not null,
  -- Event types, or ['*'] for all of them.
  events text[] not null,
  description text,
  -- whsec_ + base64 of 32 random bytes; needed in clear to sign, never answered by a GET.
  secret text not null,
  is_active boolean not null default true,
  disabled_reason text,
  -- Deliveries that failed for good in a row; 20 disables the webhook.
  failed_deliveries_in_a_row integer not null default 0,
  created_by integer references users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create type delivery_state as enum ('pending', 'delivered', 'failed');

create table webhook_deliveries (
  id bigint generated always as identity primary key,
  webhook_id integer not null references webhooks (id) on delete cascade,
  event_id bigint not null references events (id) on delete cascade,
  resource_key text not null,
  state delivery_state not null default 'pending',
  attempts integer not null default 0,
  last_status integer,
  last_error text,
  next_attempt_at timestamptz not null default now(),
  -- A claimed delivery is leased to one worker until then; an expired lease is claimed again.
  locked_until timestamptz,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  -- One delivery per event and webhook, however often the fan-out runs.
  constraint webhook_deliveries_once unique (webhook_id, event_id)
);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at, id) where state = 'pending';
create index webhook_deliveries_order_idx on webhook_deliveries (webhook_id, resource_key, event_id)
  where state = 'pending';
create index webhook_deliveries_list_idx on webhook_deliveries (webhook_id, id);

create type notification_state as enum ('pending', 'sending', 'sent', 'failed', 'skipped');

-- A mail to one user about one thing: the unique key is what keeps a retried job from mailing twice.
create table notifications (
  id bigint generated always as identity primary key,
  -- The event's public id, or another stable key for mails that no event carries.
  subject_key text not null,
  user_id integer not null references users (id) on delete cascade,
  kind text not null,
  event_id bigint references events (id) on delete cascade,
  data jsonb not null default '{}',
  state notification_state not null default 'pending',
  attempts integer not null default 0,
  last_error text,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  sent_at timestamptz,
  created_at timestamptz not null default now(),
  constraint notifications_once unique (subject_key, user_id)
);
create index notifications_due_idx on notifications (next_attempt_at, id) where state in ('pending', 'sending');

create type user_locale as enum ('es', 'en');
alter table users add column locale user_locale not null default 'es';
alter table users add column notify_lead_assigned boolean not null default true;
alter table users add column notify_lead_status_changed boolean not null default true;
alter table users add column notify_inbound_lead boolean not null default true;

alter type audited_table add value if not exists 'webhooks';

-- migrate:down
alter table users drop column notify_inbound_lead;
alter table users drop column notify_lead_status_changed;
alter table users drop column notify_lead_assigned;
alter table users drop column locale;
drop type user_locale;
drop table notifications;
drop type notification_state;
drop table webhook_deliveries;
drop type delivery_state;
drop table webhooks;
drop table events;
-- audited_table keeps the value 'webhooks': PostgreSQL cannot drop an enum value.
