-- migrate:up
-- An export is audited too: its row names the table and holds the filters and the row count. It
-- concerns no single record, so record_id may be null.
alter type audit_action add value if not exists 'export';
alter table audit_logs alter column record_id drop not null;

-- migrate:down
-- audit_action keeps the value 'export': PostgreSQL cannot drop an enum value. record_id stays
-- nullable while export rows exist, since audit rows are never deleted.
