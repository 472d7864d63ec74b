-- migrate:up
-- A lead's deal: what it is worth, in which currency, when it should close, and why it was lost.
-- currency keeps a default for rows written outside the API (seed data, leads older than this
-- column); the API always writes DEFAULT_CURRENCY or the caller's code.
alter table leads
  add column amount numeric(14, 2) constraint leads_amount_not_negative check (amount >= 0),
  add column currency text not null default 'USD' constraint leads_currency_code check (currency ~ '^[A-Z]{3}$'),
  add column expected_close_date date,
  add column lost_reason text;

-- The sorts by amount and expected_close_date of live leads, leads without one last in either
-- direction: the expressions of their keysets (leads/queries.ts nullsLastKeys), one index a direction.
create index leads_amount_idx
  on leads (((amount is null)::int), (coalesce(amount, 0)), id) where deleted_at is null;
create index leads_amount_desc_idx
  on leads (((amount is not null)::int), (coalesce(amount, 0)), id) where deleted_at is null;
create index leads_expected_close_idx
  on leads (((expected_close_date is null)::int), (coalesce(expected_close_date, 'epoch'::date)), id)
  where deleted_at is null;
create index leads_expected_close_desc_idx
  on leads (((expected_close_date is not null)::int), (coalesce(expected_close_date, 'epoch'::date)), id)
  where deleted_at is null;

-- migrate:down
drop index leads_expected_close_desc_idx;
drop index leads_expected_close_idx;
drop index leads_amount_desc_idx;
drop index leads_amount_idx;
alter table leads drop column lost_reason, drop column expected_close_date, drop column currency, drop column amount;
