-- migrate:up
-- The reminder time (coalesce(remind_at, due_at)) a task was last reminded for, or marked as passed
-- for: a task is due for a reminder while it is open and this differs from its reminder time, so
-- moving remind_at or due_at re-arms it, and the workers' claim setting it makes each reminder once.
alter table tasks add column reminded_for timestamptz;
-- The workers' poll reads only the tasks still to remind, in the order they fall due.
create index tasks_reminder_due_idx on tasks ((coalesce(remind_at, due_at)), id)
  where done_at is null and reminded_for is distinct from coalesce(remind_at, due_at);

-- migrate:down
drop index tasks_reminder_due_idx;
alter table tasks drop column reminded_for;
