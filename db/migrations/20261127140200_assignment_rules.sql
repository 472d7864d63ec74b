-- migrate:up
create type assignment_mode as enum ('none', 'round_robin');

-- How inbound leads (web forms, WhatsApp) are handed out: one row. Choosing the next assignee locks
-- it FOR UPDATE, so concurrent leads on every instance take their turns one after the other.
create table assignment_rules (
  id integer primary key default 1 constraint assignment_rules_single_row check (id = 1),
  mode assignment_mode not null default 'none',
  -- The user who got the last lead: the next one goes to the next active user in the list.
  last_user_id integer references users (id) on delete set null,
  updated_at timestamptz not null default now()
);
insert into assignment_rules default values;

-- The users in the rotation, in order; a deleted user leaves it.
create table assignment_rule_users (
  user_id integer primary key references users (id) on delete cascade,
  position integer not null
);

alter type audited_table add value if not exists 'assignment_rules';

-- migrate:down
drop table assignment_rule_users;
drop table assignment_rules;
drop type assignment_mode;
-- audited_table keeps the value 'assignment_rules': PostgreSQL cannot drop an enum value.
