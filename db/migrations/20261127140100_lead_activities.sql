-- migrate:up
create type activity_type as enum (
  'note', 'call', 'meeting', 'email', 'whatsapp', 'form', 'status_change', 'assignment'
);
create type activity_direction as enum ('inbound', 'outbound');

-- One timeline per lead: what people add (notes, calls, ...), messages in and out, form
-- submissions, and the status changes and assignments the system records as they happen.
create table lead_activities (
  id integer generated always as identity primary key,
  lead_id integer not null references leads (id) on delete cascade,
  type activity_type not null,
  body text,
  direction activity_direction,
  occurred_at timestamptz not null default now(),
  created_by integer references users (id) on delete set null,
  created_at timestamptz not null default now(),
  meta jsonb not null default '{}',
  -- An id given by the outside world (a WhatsApp message id): stored once, so a redelivery adds nothing.
  external_id text
);
create unique index lead_activities_external_id_key on lead_activities (external_id);
-- The timeline, newest first.
create index lead_activities_lead_idx on lead_activities (lead_id, occurred_at, id);
create index lead_activities_created_by_idx on lead_activities (created_by);

alter type audited_table add value if not exists 'lead_activities';

-- migrate:down
drop table lead_activities;
drop type activity_direction;
drop type activity_type;
-- audited_table keeps the value 'lead_activities': PostgreSQL cannot drop an enum value.
