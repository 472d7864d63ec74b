-- migrate:up
-- Leads from before first responses were recorded get theirs from history, by the same rule as new
-- ones: the earliest call, email, meeting or outbound message at or after creation (no later than now),
-- or the first move out of `new` in the audit log, whichever came first. Their business seconds are
-- counted by the application (src/pipeline/first-response.ts), which knows the calendar; until then
-- response_business_seconds stays null. In slices of ids, so that the counters' statement triggers
-- never hold millions of rows at once.
do $$
declare
  top integer;
  low integer := 0;
begin
  select coalesce(max(id), 0) into top from leads;
  while low <= top loop
    update leads set first_response_at = history.answered_at
    from (
      select lead.id, least(
        (select min(least(activity.occurred_at, now()))
         from lead_activities as activity
         where activity.lead_id = lead.id
           and activity.occurred_at >= lead.created_at
           and (activity.type in ('call', 'email', 'meeting')
                or (activity.type = 'whatsapp' and activity.direction = 'outbound'))),
        (select min(audit.created_at)
         from audit_logs as audit
         where audit.table_name = 'leads' and audit.record_id = lead.id and audit.action = 'update'
           and audit.old_values ->> 'status' = 'new' and audit.new_values ->> 'status' <> 'new')
      ) as answered_at
      from leads as lead
      where lead.id >= low and lead.id < low + 10000 and lead.first_response_at is null
    ) as history
    where leads.id = history.id and history.answered_at is not null;
    low := low + 10000;
  end loop;
end
$$;

-- Where the application finds them; empty once they are counted.
create index leads_uncounted_response_idx on leads (id)
  where first_response_at is not null and response_business_seconds is null;

-- migrate:down
drop index leads_uncounted_response_idx;
