-- migrate:up
create type lead_channel as enum ('web', 'whatsapp', 'instagram', 'manual');
create type lead_status as enum ('new', 'contacted', 'quoted', 'closed', 'discarded');

create table leads (
  id integer generated always as identity primary key,
  -- No cascade: deleting a client's leads is done by the API, one audit row each.
  client_id integer not null references clients (id),
  channel lead_channel not null,
  status lead_status not null default 'new',
  admin_notes text,
  sales_notes text,
  -- Deleting a user unassigns their leads first (with audit rows); the key refuses anything else.
  assigned_to integer references users (id),
  -- Who created it, kept as history like an audit row.
  created_by integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  status_changed_at timestamptz not null default now(),
  notes_search text generated always as (
    immutable_unaccent(lower(coalesce(admin_notes, '') || ' ' || coalesce(sales_notes, '')))
  ) stored
);

-- The filters and sorts of GET /leads and /leads/stats, for everyone and scoped to one assignee.
create index leads_status_created_at_idx on leads (status, created_at, id);
create index leads_created_at_idx on leads (created_at, id);
create index leads_updated_at_idx on leads (updated_at, id);
create index leads_status_changed_at_idx on leads (status_changed_at, id);
create index leads_assigned_created_at_idx on leads (assigned_to, created_at, id);
create index leads_assigned_status_created_at_idx on leads (assigned_to, status, created_at, id);
create index leads_channel_created_at_idx on leads (channel, created_at, id);
create index leads_client_idx on leads (client_id, id);
create index leads_notes_search_trgm_idx on leads using gin (notes_search gin_trgm_ops);

alter type audited_table add value if not exists 'leads';

-- migrate:down
drop table leads;
drop type lead_status;
drop type lead_channel;
-- audited_table keeps the value 'leads': PostgreSQL cannot drop an enum value.
