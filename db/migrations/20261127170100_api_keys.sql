-- migrate:up
-- Keys for scripts and integrations: the key itself is shown once and only its SHA-256 is kept.
create table api_keys (
  id integer generated always as identity primary key,
  -- A deleted user's keys go with them: a key acts as its owner and has no life of its own.
  user_id integer not null references users (id) on delete cascade,
  name text not null constraint api_keys_name_length check (char_length(name) between 1 and 100),
  key_hash bytea not null,
  -- The first characters of the key, shown in lists so that a person can tell their keys apart.
  key_prefix text not null,
  scopes text[] not null constraint api_keys_scopes check (scopes in ('{read}'::text[], '{read,write}'::text[])),
  expires_at timestamptz,
  last_used_at timestamptz,
  created_at timestamptz not null default now()
);
create unique index api_keys_key_hash_key on api_keys (key_hash);
create index api_keys_user_idx on api_keys (user_id, id);

alter type audited_table add value if not exists 'api_keys';

-- A change made through a key names it, beside its owner in user_id and username.
alter table audit_logs add column api_key_id integer, add column api_key_name text;

-- migrate:down
alter table audit_logs drop column api_key_name, drop column api_key_id;
-- audited_table keeps the value 'api_keys': PostgreSQL cannot drop an enum value.
drop table api_keys;
