-- migrate:up
-- The text that client search matches (clients.search_text) of each live client, in a table of its
-- own. Counting up to 10,001 matches reads every match's row to recheck it; a client's row is about
-- 650 bytes (its full-text vector among them) and this one about 90, so the rows a search reads fit
-- in a tenth of the pages and stay in the cache. Kept by a trigger, like the lead counters, so that
-- no path that changes a client (routes, imports, merges, the trash) can forget it.
create table client_search (
  client_id integer primary key references clients (id) on delete cascade,
  search_text text not null
);

insert into client_search (client_id, search_text)
select id, search_text from clients where deleted_at is null;

create index client_search_text_trgm_idx on client_search using gin (search_text gin_trgm_ops);
drop index clients_search_text_trgm_idx;

-- A live client has its row, with its current text; a trashed one has none (purging removes the
-- client, and the foreign key its row).
create function clients_keep_search() returns trigger
language plpgsql as $$
begin
  if new.deleted_at is null then
    insert into client_search (client_id, search_text) values (new.id, new.search_text)
    on conflict (client_id) do update set search_text = excluded.search_text
    where client_search.search_text is distinct from excluded.search_text;
  else
    delete from client_search where client_id = new.id;
  end if;
  return null;
end
$$;

create trigger clients_keep_search after insert or update of contact_name, company_name, email, phone, deleted_at
  on clients for each row execute function clients_keep_search();

-- migrate:down
drop trigger clients_keep_search on clients;
drop function clients_keep_search();
create index clients_search_text_trgm_idx on clients using gin (search_text gin_trgm_ops);
drop table client_search;
