-- migrate:up
create extension if not exists pg_trgm;
create extension if not exists unaccent;

-- unaccent() is only STABLE (its dictionary could change); pinning the dictionary makes this
-- wrapper safe to use in a generated column and an index.
create function immutable_unaccent(value text) returns text
language sql immutable parallel safe strict
as $$ select public.unaccent('public.unaccent'::regdictionary, value) $$;

create type client_type as enum ('natural', 'juridical');

create table clients (
  id integer generated always as identity primary key,
  client_type client_type not null,
  contact_name text not null constraint clients_contact_name_length check (length(contact_name) between 1 and 200),
  company_name text constraint clients_company_name_length check (length(company_name) between 1 and 200),
  -- E.164, validated by the API before it gets here.
  phone text not null constraint clients_phone_e164 check (phone ~ '^\+[1-9][0-9]{5,14}$'),
  email text constraint clients_email_lower_case check (email = lower(email)),
  address text,
  -- Who created it, kept as history like an audit row: no foreign key, so deleting a user changes no client.
  created_by integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Lower-case, accent-free text that search matches against (names, email, phone digits).
  search_text text generated always as (
    immutable_unaccent(lower(
      contact_name || ' ' || coalesce(company_name, '') || ' ' || coalesce(email, '') || ' ' || substr(phone, 2)
    ))
  ) stored,
  constraint clients_company_required check (client_type = 'natural' or company_name is not null)
);

create unique index clients_phone_key on clients (phone);
create index clients_search_text_trgm_idx on clients using gin (search_text gin_trgm_ops);
create index clients_created_at_idx on clients (created_at, id);
create index clients_updated_at_idx on clients (updated_at, id);
create index clients_contact_name_idx on clients (contact_name, id);
create index clients_type_created_at_idx on clients (client_type, created_at, id);

alter type audited_table add value if not exists 'clients';

-- migrate:down
drop table clients;
drop type client_type;
drop function immutable_unaccent(text);
-- audited_table keeps the value 'clients': PostgreSQL cannot drop an enum value.
