-- migrate:up
-- A saved view: the filters and sort of GET /leads or GET /clients under a name, applied with ?view=.
create type view_resource as enum ('leads', 'clients');

create table saved_views (
  id integer generated always as identity primary key,
  -- A user's views go with the user (the audit rows of their changes stay).
  owner_id integer not null references users (id) on delete cascade,
  name text not null constraint saved_views_name_length check (length(name) between 1 and 100),
  resource view_resource not null,
  -- The list's query parameters as an object, arrays for repeatable ones, checked by the API when saved.
  filters jsonb not null default '{}' constraint saved_views_filters_object check (jsonb_typeof(filters) = 'object'),
  sort text,
  shared boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- GET /views: the caller's own and the shared ones.
create index saved_views_owner_idx on saved_views (owner_id, id);
create index saved_views_shared_idx on saved_views (id) where shared;

alter type audited_table add value if not exists 'saved_views';

-- migrate:down
drop table saved_views;
drop type view_resource;
-- audited_table keeps the value 'saved_views': PostgreSQL cannot drop an enum value.
