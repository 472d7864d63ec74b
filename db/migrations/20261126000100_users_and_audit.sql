-- migrate:up
create type user_role as enum ('admin', 'sales', 'management');

create table users (
  id integer generated always as identity primary key,
  -- Stored lower-case, so the unique index is case-insensitive.
  username text not null constraint users_username_format check (username ~ '^[a-z0-9._-]{3,50}$'),
  email text constraint users_email_lower_case check (email = lower(email)),
  full_name text,
  role user_role not null,
  password_hash text not null,
  is_active boolean not null default true,
  -- Bumped on a change of password, role or is_active: tokens carrying an older version stop working.
  token_version integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_login_at timestamptz
);
create unique index users_username_key on users (username);
create unique index users_email_key on users (email);
create index users_role_active_idx on users (role, is_active);

create type audit_action as enum ('create', 'update', 'delete');
create type audited_table as enum ('users');

-- No foreign key to users: rows outlive the users who wrote them and never change.
create table audit_logs (
  id bigint generated always as identity primary key,
  table_name audited_table not null,
  record_id integer not null,
  action audit_action not null,
  old_values jsonb,
  new_values jsonb,
  user_id integer,
  username text,
  request_id text,
  created_at timestamptz not null default now()
);
create index audit_logs_record_idx on audit_logs (table_name, record_id, id);
create index audit_logs_user_idx on audit_logs (user_id, id);
create index audit_logs_created_at_idx on audit_logs (created_at, id);

create function audit_logs_refuse_change() returns trigger
language plpgsql as $$
begin
  raise exception 'audit_logs is append-only: % is not allowed', tg_op
    using errcode = 'insufficient_privilege';
end
$$;

create trigger audit_logs_append_only
  before update or delete on audit_logs
  for each row execute function audit_logs_refuse_change();

create trigger audit_logs_no_truncate
  before truncate on audit_logs
  for each statement execute function audit_logs_refuse_change();

-- Failed logins per key ('user:<name>' or 'address:<ip>'), shared by every API instance.
create table login_failures (
  key text primary key,
  failures integer not null,
  window_started_at timestamptz not null
);

-- migrate:down
drop table login_failures;
drop trigger audit_logs_no_truncate on audit_logs;
drop trigger audit_logs_append_only on audit_logs;
drop function audit_logs_refuse_change();
drop table audit_logs;
drop type audit_action;
drop type audited_table;
drop table users;
drop type user_role;
