-- migrate:up
-- The word-similarity threshold of typo search (the `<%` operator the trigram indexes answer) as the
-- database's own default for every new session, rather than set on each connection: behind a pooler in
-- transaction mode (PgBouncer) a connection's session settings do not follow its statements. A typo in a
-- name ("Peres" for "Pérez") scores about 0.5; pg_trgm's default of 0.6 would miss it. Keep equal to
-- WORD_SIMILARITY_THRESHOLD in src/db/search.ts.
do $$
begin
  execute format('alter database %I set pg_trgm.word_similarity_threshold = 0.45', current_database());
exception when insufficient_privilege then
  raise warning 'not the owner of database %: run ALTER ROLE <the API''s role> SET pg_trgm.word_similarity_threshold = 0.45 as its owner, or typo search finds less', current_database();
end
$$;
-- This session too: the embedded database is one session that every connection shares.
select set_config('pg_trgm.word_similarity_threshold', '0.45', false);

-- migrate:down
do $$
begin
  execute format('alter database %I reset pg_trgm.word_similarity_threshold', current_database());
end
$$;
