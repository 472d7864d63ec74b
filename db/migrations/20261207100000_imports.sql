-- migrate:up
-- An import writes its rows a batch at a time, so that other requests run between batches; it is
-- all-or-nothing all the same. Each import has a row here, and the audit rows of what it wrote name
-- it: an import that fails while writing, or whose process stops before it is done, is undone by
-- walking its audit rows backwards (creates removed, updates put back).
create table imports (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('clients', 'leads')),
  user_id integer references users (id) on delete set null,
  -- writing → done; writing → undoing → undone.
  state text not null default 'writing' check (state in ('writing', 'done', 'undoing', 'undone')),
  -- Touched by every batch: an unfinished import left untouched for long belongs to a stopped process.
  heartbeat_at timestamptz not null default now(),
  -- While undoing: the lowest audit row undone so far (the walk goes down from the newest).
  undone_below bigint,
  -- Rows left as they are because somebody else changed them after the import wrote them.
  kept integer not null default 0,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
create index imports_unfinished_idx on imports (heartbeat_at) where state in ('writing', 'undoing');

alter table audit_logs add column import_id bigint references imports (id);
create index audit_logs_import_idx on audit_logs (import_id, id) where import_id is not null;

-- migrate:down
drop index audit_logs_import_idx;
alter table audit_logs drop column import_id;
drop table imports;
