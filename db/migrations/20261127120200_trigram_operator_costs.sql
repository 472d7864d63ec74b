-- migrate:up
-- pg_trgm declares its word-similarity operators as cheap as `=`, so for "the first 500 similar
-- clients" the planner prefers reading the table in order and testing every row (~25 µs each)
-- to the trigram index. Their true cost makes it use the index. (Extension functions keep this
-- setting across restarts; a dump restores the extension's own defaults, so this migration is
-- what sets it.)
alter function word_similarity_op(text, text) cost 100;
alter function word_similarity_commutator_op(text, text) cost 100;

-- migrate:down
alter function word_similarity_op(text, text) cost 1;
alter function word_similarity_commutator_op(text, text) cost 1;
