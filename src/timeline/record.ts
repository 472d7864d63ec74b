import { type Selectable, sql, type Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { ActivityDirection, ActivityType, DB, LeadActivities } from '../db/types.js'
import { writeEvent } from '../events/outbox.js'
import { recordFirstResponses } from '../pipeline/first-response.js'

export const ACTIVITY_COLUMNS = [
  'lead_activities.id',
  'lead_activities.lead_id',
  'lead_activities.type',
  'lead_activities.body',
  'lead_activities.direction',
  'lead_activities.occurred_at',
  'lead_activities.created_by',
  'lead_activities.created_at',
  sql<ActivityMeta>`lead_activities.meta`.as('meta'),
] as const

export type ActivityMeta = Record<string, unknown>

/** An activity as GET /leads/{id}/activities answers it (the external id stays inside, in `meta` when useful). */
export type Activity = Omit<Selectable<LeadActivities>, 'external_id' | 'meta' | 'search_vector'> & {
  meta: ActivityMeta
}

export interface NewActivity {
  lead_id: number
  type: ActivityType
  body?: string | null
  direction?: ActivityDirection | null
  /** When it happened, when not now (a call made earlier, a message's own timestamp). */
  occurred_at?: Date | string
  meta?: ActivityMeta
  /** An id given by the outside world (a WhatsApp message id): an activity with it is stored once. */
  external_id?: string | null
}

/**
 * The one writer of timeline rows: inserts the activities with their audit rows and
 * `lead.activity_added` events, in the caller's transaction, and the first response of a lead that a
 * call, email, meeting or outbound message answers (pipeline/first-response.ts). An activity whose `external_id` is
 * already stored is skipped (a redelivered message); the rows written are returned.
 */
export async function recordActivities(trx: Transaction<DB>, actor: Actor, inputs: NewActivity[]): Promise<Activity[]> {
  if (inputs.length === 0) return []
  const rows = await trx
    .insertInto('lead_activities')
    .values(
      inputs.map((input) => ({
        lead_id: input.lead_id,
        type: input.type,
        body: input.body ?? null,
        direction: input.direction ?? null,
        ...(input.occurred_at !== undefined && { occurred_at: input.occurred_at }),
        created_by: actor.userId,
        meta: JSON.stringify(input.meta ?? {}),
        external_id: input.external_id ?? null,
      })),
    )
    .onConflict((conflict) => conflict.column('external_id').doNothing())
    .returning([...ACTIVITY_COLUMNS, 'lead_activities.external_id'])
    .execute()
  const activities = rows.map(({ external_id: _external, ...activity }) => activity)
  await recordFirstResponses(trx, activities)
  await writeAudit(
    trx,
    actor,
    rows.map((row) => ({
      table: 'lead_activities',
      recordId: row.id,
      action: 'create',
      oldValues: null,
      newValues: row,
    })),
  )
  await writeEvent(
    trx,
    actor,
    activities.map((activity) => ({
      type: 'lead.activity_added',
      resource: 'lead_activity',
      id: activity.id,
      old: null,
      new: activity,
      object: activity,
    })),
  )
  return activities
}

/** One activity (see recordActivities); null when its `external_id` was already stored. */
export async function recordActivity(trx: Transaction<DB>, actor: Actor, input: NewActivity): Promise<Activity | null> {
  const [activity] = await recordActivities(trx, actor, [input])
  return activity ?? null
}
