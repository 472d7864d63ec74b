-- migrate:up
-- The first outbound contact after a lead was created (an outbound message; a call, email or meeting;
-- the move out of `new`), written once in the transaction of that contact. response_seconds follows
-- from it; response_business_seconds counts only open hours, with the pipeline settings of that moment.
alter table leads
  add column first_response_at timestamptz,
  add column response_seconds integer
    generated always as (floor(extract(epoch from (first_response_at - created_at)))::integer) stored,
  add column response_business_seconds integer;

-- migrate:down
alter table leads
  drop column response_business_seconds,
  drop column response_seconds,
  drop column first_response_at;
