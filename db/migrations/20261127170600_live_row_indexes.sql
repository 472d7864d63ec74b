-- migrate:up
-- Every list, count and sort reads live rows only (deleted_at is null). The indexes they use hold
-- only those rows, so that a count stays an index-only scan and trashed rows cost nothing.
-- leads_client_idx and leads_assigned_created_at_idx stay whole: restoring, merging and purging find a
-- client's trashed leads, and deleting a user unassigns their leads, trashed ones included.
drop index leads_status_created_at_idx;
create index leads_status_created_at_idx on leads (status, created_at, id) where deleted_at is null;
drop index leads_created_at_idx;
create index leads_created_at_idx on leads (created_at, id) where deleted_at is null;
drop index leads_updated_at_idx;
create index leads_updated_at_idx on leads (updated_at, id) where deleted_at is null;
drop index leads_status_changed_at_idx;
create index leads_status_changed_at_idx on leads (status_changed_at, id) where deleted_at is null;
drop index leads_assigned_status_created_at_idx;
create index leads_assigned_status_created_at_idx on leads (assigned_to, status, created_at, id)
  where deleted_at is null;
drop index leads_channel_created_at_idx;
create index leads_channel_created_at_idx on leads (channel, created_at, id) where deleted_at is null;
drop index clients_created_at_idx;
create index clients_created_at_idx on clients (created_at, id) where deleted_at is null;
drop index clients_updated_at_idx;
create index clients_updated_at_idx on clients (updated_at, id) where deleted_at is null;
drop index clients_contact_name_idx;
create index clients_contact_name_idx on clients (contact_name, id) where deleted_at is null;
drop index clients_type_created_at_idx;
create index clients_type_created_at_idx on clients (client_type, created_at, id) where deleted_at is null;

-- migrate:down
drop index leads_status_created_at_idx;
create index leads_status_created_at_idx on leads (status, created_at, id);
drop index leads_created_at_idx;
create index leads_created_at_idx on leads (created_at, id);
drop index leads_updated_at_idx;
create index leads_updated_at_idx on leads (updated_at, id);
drop index leads_status_changed_at_idx;
create index leads_status_changed_at_idx on leads (status_changed_at, id);
drop index leads_assigned_status_created_at_idx;
create index leads_assigned_status_created_at_idx on leads (assigned_to, status, created_at, id);
drop index leads_channel_created_at_idx;
create index leads_channel_created_at_idx on leads (channel, created_at, id);
drop index clients_created_at_idx;
create index clients_created_at_idx on clients (created_at, id);
drop index clients_updated_at_idx;
create index clients_updated_at_idx on clients (updated_at, id);
drop index clients_contact_name_idx;
create index clients_contact_name_idx on clients (contact_name, id);
drop index clients_type_created_at_idx;
create index clients_type_created_at_idx on clients (client_type, created_at, id);
