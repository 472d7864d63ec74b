-- migrate:up
-- The IANA zone that says when a user's day starts (due today, digests); null follows DEFAULT_TIME_ZONE.
-- The application checks the name: the server's and Node's zone databases need not agree.
alter table users add column time_zone text check (time_zone is null or char_length(time_zone) between 1 and 100);

-- Follow-ups. A task hangs off a lead, or a client, or nothing; a lead's task reads its client through
-- the lead, so it never holds a client of its own that a move of the lead could leave stale.
create table tasks (
  id integer generated always as identity primary key,
  title text not null check (char_length(title) between 1 and 200),
  notes text,
  due_at timestamptz not null,
  remind_at timestamptz,
  lead_id integer references leads (id) on delete cascade,
  client_id integer references clients (id) on delete cascade,
  assigned_to integer references users (id) on delete set null,
  created_by integer references users (id) on delete set null,
  done_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint tasks_one_parent check (lead_id is null or client_id is null)
);
create index tasks_due_idx on tasks (due_at, id);
create index tasks_assignee_open_idx on tasks (assigned_to, due_at, id) where done_at is null;
create index tasks_lead_idx on tasks (lead_id, due_at) where lead_id is not null;
create index tasks_client_idx on tasks (client_id) where client_id is not null;
create index tasks_created_by_idx on tasks (created_by);

-- The earliest open task's due_at, kept by the tasks service in the transaction of each task change.
alter table leads add column next_task_at timestamptz;
-- The sort by next_task_at of live leads, leads without an open task last: the expressions of its keyset
-- (leads/queries.ts nextTaskKeys), one index for each direction, each read forwards or backwards.
create index leads_next_task_idx
  on leads (((next_task_at is null)::int), (coalesce(next_task_at, 'epoch'::timestamptz)), id)
  where deleted_at is null;
create index leads_next_task_desc_idx
  on leads (((next_task_at is not null)::int), (coalesce(next_task_at, 'epoch'::timestamptz)), id)
  where deleted_at is null;
-- has_open_task=true and next_task_from/to: the few leads with an open task.
create index leads_open_task_idx on leads (next_task_at, id) where deleted_at is null and next_task_at is not null;

alter type audited_table add value if not exists 'tasks';
alter type activity_type add value if not exists 'task';

-- migrate:down
drop index leads_open_task_idx;
drop index leads_next_task_desc_idx;
drop index leads_next_task_idx;
alter table leads drop column next_task_at;
drop table tasks;
alter table users drop column time_zone;
-- audited_table keeps 'tasks' and activity_type keeps 'task': PostgreSQL cannot drop an enum value.
