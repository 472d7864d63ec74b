-- migrate:up
-- Counts for a page's total come from the index only while the visibility map is current: vacuum
-- leads after 2 % of it changed rather than PostgreSQL's default 20 %.
alter table leads set (
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02
);

-- migrate:down
alter table leads reset (
  autovacuum_vacuum_scale_factor,
  autovacuum_vacuum_insert_scale_factor,
  autovacuum_analyze_scale_factor
);
