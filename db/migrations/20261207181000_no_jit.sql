-- migrate:up
-- No JIT compilation for this database's sessions: every read here is a short one, and at millions of
-- leads the planner's row estimates for the agenda's and the stats' lists pass JIT's cost thresholds,
-- so PostgreSQL spent 50–130 ms compiling queries that run in a few. Like the search threshold, the
-- database's own default reaches every connection, a pooler's too.
do $$
begin
  execute format('alter database %I set jit = off', current_database());
exception when insufficient_privilege then
  raise warning 'not the owner of database %: run ALTER ROLE <the API''s role> SET jit = off as its owner, or long lists may spend their time compiling', current_database();
end
$$;
-- This session too: behind a pooler it is a server connection that others will be handed.
select set_config('jit', 'off', false);

-- migrate:down
do $$
begin
  execute format('alter database %I reset jit', current_database());
end
$$;
