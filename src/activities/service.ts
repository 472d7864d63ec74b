import type { Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { visibleLeads } from '../auth/scope.js'
import type { Database } from '../db/database.js'
import { columnKey, type Page, type PageRequest, paginate } from '../db/paginate.js'
import type { DB } from '../db/types.js'
import { ConflictError, ForbiddenError, NotFoundError } from '../errors/domain.js'
import { ACTIVITY_COLUMNS, type Activity, recordActivities } from '../timeline/record.js'
import { PEOPLE_ACTIVITY_TYPES } from './schemas.js'

/** 404 unless the caller may see the lead (sales: only their own). */
async function assertVisibleLead(db: Database, actor: AuthenticatedActor, leadId: number): Promise<void> {
  const lead = await visibleLeads(db, actor).select('leads.id').where('leads.id', '=', leadId).executeTakeFirst()
  if (!lead) throw new NotFoundError('Lead')
}

/** A lead's timeline, newest first. */
export async function listActivities(
  db: Database,
  actor: AuthenticatedActor,
  leadId: number,
  page: PageRequest,
): Promise<Page<Activity>> {
  await assertVisibleLead(db, actor, leadId)
  return paginate(db, {
    matching: db.selectFrom('lead_activities').where('lead_activities.lead_id', '=', leadId),
    select: (matching) => matching.select(ACTIVITY_COLUMNS),
    order: {
      keys: [columnKey('lead_activities.occurred_at', 'timestamp')],
      id: 'lead_activities.id',
      direction: 'desc',
    },
    page,
    filters: { lead_id: leadId },
  })
}

export interface NewPersonActivity {
  lead_id: number
  type: (typeof PEOPLE_ACTIVITY_TYPES)[number]
  body: string
  occurred_at?: string
}

/** A note, call, meeting or email added by a person to a lead they may see. */
export async function addActivity(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  input: NewPersonActivity,
): Promise<Activity> {
  await assertVisibleLead(trx, actor, input.lead_id)
  // Without an external id the row is always written.
  const [activity] = await recordActivities(trx, actor, [
    { lead_id: input.lead_id, type: input.type, body: input.body, occurred_at: input.occurred_at },
  ])
  return activity as Activity
}

export async function getActivity(
  db: Database,
  actor: AuthenticatedActor,
  input: { lead_id: number; activity_id: number },
): Promise<Activity> {
  await assertVisibleLead(db, actor, input.lead_id)
  const activity = await db
    .selectFrom('lead_activities')
    .select(ACTIVITY_COLUMNS)
    .where('lead_activities.id', '=', input.activity_id)
    .where('lead_activities.lead_id', '=', input.lead_id)
    .executeTakeFirst()
  if (!activity) throw new NotFoundError('Activity')
  return activity
}

/** Deletes a person's activity: its author, admin or management; what the system wrote stays. */
export async function deleteActivity(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  input: { lead_id: number; activity_id: number },
): Promise<void> {
  await assertVisibleLead(trx, actor, input.lead_id)
  const activity = await trx
    .selectFrom('lead_activities')
    .select([...ACTIVITY_COLUMNS, 'lead_activities.external_id'])
    .where('lead_activities.id', '=', input.activity_id)
    .where('lead_activities.lead_id', '=', input.lead_id)
    .forUpdate()
    .executeTakeFirst()
  if (!activity) throw new NotFoundError('Activity')
  if (!(PEOPLE_ACTIVITY_TYPES as readonly string[]).includes(activity.type)) {
    throw new ConflictError('activity_not_deletable', `A ${activity.type} activity is part of the lead's record`)
  }
  if (actor.role === 'sales' && activity.created_by !== actor.userId) {
    throw new ForbiddenError('Sales users delete only the activities they added')
  }
  await trx.deleteFrom('lead_activities').where('id', '=', activity.id).execute()
  await writeAudit(trx, actor, {
    table: 'lead_activities',
    recordId: activity.id,
    action: 'delete',
    oldValues: activity,
    newValues: null,
  })
}
