-- migrate:up
-- Why leads are lost (a discarded lead names one) and how likely an open lead is to be won, per
-- status (the weighted forecast of GET /leads/stats).
alter table pipeline_settings
  add column lost_reasons jsonb not null default '["price", "competitor", "no_response", "not_interested", "other"]',
  add column stage_probability jsonb not null default '{"new": 0.1, "contacted": 0.3, "quoted": 0.6}';

-- migrate:down
alter table pipeline_settings drop column stage_probability, drop column lost_reasons;
