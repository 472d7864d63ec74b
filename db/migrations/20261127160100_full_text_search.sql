-- migrate:up
-- Full-text search in Spanish (GET /search over clients, leads' notes and their activities; notes in
-- GET /leads?q=).
--
-- Each text is indexed twice in one tsvector: by the stock `spanish` configuration (stems:
-- "cotizaciones" and "cotización" both give "cotiz"; Snowball's Spanish stemmer needs the accents to
-- find the suffix, and takes them off the stem itself), and by `es_unaccent`, the words themselves
-- without accents (so "munoz" finds "Muñoz", and a word typed halfway is a prefix of the whole one).
-- Unaccenting before the stemmer would lose the stems of every accented suffix.
create text search dictionary es_words (template = pg_catalog.simple, stopwords = spanish);
create text search configuration es_unaccent (copy = pg_catalog.spanish);
alter text search configuration es_unaccent
  alter mapping for asciiword, asciihword, hword_asciipart, word, hword, hword_part with public.unaccent, es_words;

-- < and > would make the parser read what follows as a tag and skip it; & as an entity.
create function search_vector(value text) returns tsvector
language sql immutable parallel safe strict
as $$
  select to_tsvector('pg_catalog.spanish', translate(value, '<>&', '   '))
    || to_tsvector('public.es_unaccent', translate(value, '<>&', '   '))
$$;

-- The query for one search: for each word, its stems (several spellings: "cotizacion" is also tried as
-- "cotización") or the word itself; all words required. The API builds the two arrays from what the
-- user typed (src/db/search.ts), letters and digits only, with `:*` on the last word. Immutable, so PostgreSQL folds it
-- into a constant when planning and the GIN index answers `@@`.
create function search_query(stems text[], words text[]) returns tsquery
language sql immutable parallel safe strict
as $$
  select coalesce(string_agg('(' || part || ')', ' & '), '')::tsquery
  from (
    -- Each term once: several spellings often give the same stem, and each term is one index lookup.
    select (
      select string_agg(distinct term, ' | ')
      from (
        select to_tsquery('pg_catalog.spanish', spelling)::text as term
        from unnest(string_to_array(typed.stem, ' | ')) as spelling
        union
        select to_tsquery('public.es_unaccent', typed.word)::text
      ) as terms
      where term <> ''
    ) as part
    from unnest(stems, words) as typed(stem, word)
    -- A stop word is left out with all its spellings: "pára" is no stop word, "para" is.
    where numnode(to_tsquery('public.es_unaccent', typed.word)) > 0
  ) as parts
  where part is not null
$$;

alter table clients add column search_vector tsvector generated always as (
  search_vector(
    contact_name || ' ' || coalesce(company_name, '') || ' ' || coalesce(translate(email, '@.', '  '), '') || ' ' ||
    substr(phone, 2)
  )
) stored;
create index clients_search_vector_idx on clients using gin (search_vector);

alter table leads add column search_vector tsvector generated always as (
  search_vector(coalesce(admin_notes, '') || ' ' || coalesce(sales_notes, ''))
) stored;
create index leads_search_vector_idx on leads using gin (search_vector);

-- A lead is also found by its activities' text (notes, calls, messages).
alter table lead_activities add column search_vector tsvector generated always as (
  search_vector(coalesce(body, ''))
) stored;
create index lead_activities_search_vector_idx on lead_activities using gin (search_vector);

-- The planner needs the new columns' statistics before the first search.
analyze clients (search_vector);
analyze leads (search_vector);

-- Notes were matched as substrings; the full text replaces that.
drop index leads_notes_search_trgm_idx;
alter table leads drop column notes_search;

-- migrate:down
alter table leads add column notes_search text generated always as (
  immutable_unaccent(lower(coalesce(admin_notes, '') || ' ' || coalesce(sales_notes, '')))
) stored;
create index leads_notes_search_trgm_idx on leads using gin (notes_search gin_trgm_ops);
alter table lead_activities drop column search_vector;
alter table leads drop column search_vector;
alter table clients drop column search_vector;
drop function search_query(text[], text[]);
drop function search_vector(text);
drop text search configuration es_unaccent;
drop text search dictionary es_words;
