-- migrate:up
-- How the team works its pipeline: one row, read by stale leads and response times. time_zone null
-- means the server's DEFAULT_TIME_ZONE, so a deployment's default applies until an admin picks a zone.
create table pipeline_settings (
  id integer primary key default 1 constraint pipeline_settings_single_row check (id = 1),
  -- Per open status, an ISO 8601 duration or null (never stale).
  stale_after jsonb not null default '{"new": null, "contacted": null, "quoted": null}',
  -- Per weekday, the open intervals in local time ("09:00"–"18:00"); an empty list is a closed day.
  business_hours jsonb not null default '{
    "monday": [{"from": "09:00", "to": "18:00"}],
    "tuesday": [{"from": "09:00", "to": "18:00"}],
    "wednesday": [{"from": "09:00", "to": "18:00"}],
    "thursday": [{"from": "09:00", "to": "18:00"}],
    "friday": [{"from": "09:00", "to": "18:00"}],
    "saturday": [],
    "sunday": []
  }',
  -- Local dates ("2026-12-25") closed all day.
  holidays jsonb not null default '[]',
  response_target text not null default 'PT1H',
  time_zone text,
  updated_at timestamptz not null default now()
);
insert into pipeline_settings default values;

alter type audited_table add value if not exists 'pipeline_settings';

-- migrate:down
drop table pipeline_settings;
-- audited_table keeps the value 'pipeline_settings': PostgreSQL cannot drop an enum value.
