-- migrate:up
-- Public lead-capture forms: a page posts to /f/{key}; the key is public (it is in the page), so it is
-- stored as it is, and rotating it retires a page that is abused.
create table web_forms (
  id integer generated always as identity primary key,
  name text not null,
  key text not null,
  -- Origins (scheme://host[:port]) whose pages may post with CORS.
  allowed_origins text[] not null default '{}',
  redirect_url text,
  -- Leads of this form go to this user while active; else to the assignment rules.
  assign_to integer references users (id) on delete set null,
  created_by integer references users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index web_forms_key_key on web_forms (key);

-- Submissions counted per form and per client address in fixed windows, shared by every instance.
create table form_submission_counts (
  key text primary key,
  submissions integer not null,
  window_started_at timestamptz not null
);
create index form_submission_counts_window_idx on form_submission_counts (window_started_at);

alter type audited_table add value if not exists 'web_forms';

-- migrate:down
drop table form_submission_counts;
drop table web_forms;
-- audited_table keeps the value 'web_forms': PostgreSQL cannot drop an enum value.
