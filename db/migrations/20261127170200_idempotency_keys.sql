-- migrate:up
-- One row per Idempotency-Key of a caller: claimed (committed) before the request runs, then
-- completed with the answer that later repeats replay. Purged by the server once expired.
create table idempotency_keys (
  -- 'user:<id>' for a person's token, 'api_key:<id>' for an API key.
  caller text not null,
  key text not null constraint idempotency_keys_key_format check (key ~ '^[\x20-\x7e]{1,255}$'),
  -- HMAC-SHA256 of the method, the path and the body: the same key with another request is refused.
  request_hash bytea not null,
  claimed_at timestamptz not null default now(),
  expires_at timestamptz not null,
  -- Null while the first request runs.
  response_status integer,
  response_body text,
  response_content_type text,
  response_location text,
  primary key (caller, key)
);
create index idempotency_keys_expires_idx on idempotency_keys (expires_at);

-- migrate:down
drop table idempotency_keys;
