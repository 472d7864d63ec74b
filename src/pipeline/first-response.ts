// A lead's first response: the first outbound contact after it was created, kept once set.
import { sql, type Transaction } from 'kysely'
import type { Database } from '../db/database.js'
import type { ActivityDirection, ActivityType, DB } from '../db/types.js'
import { businessSeconds } from './business-time.js'
import { getPipelineSettings } from './service.js'

/** The activity types that are a contact made by the team, whatever their direction. */
const CONTACT_TYPES: readonly ActivityType[] = ['call', 'email', 'meeting']

/** True for an activity that answers a lead: a call, email or meeting, or an outbound message. */
export function isFirstResponse(activity: { type: ActivityType; direction: ActivityDirection | null }): boolean {
  return CONTACT_TYPES.includes(activity.type) || (activity.type === 'whatsapp' && activity.direction === 'outbound')
}

export interface FirstResponse {
  first_response_at: Date
  response_business_seconds: number
}

/** The columns to write on a lead first answered at `at`, counted in open hours by the settings of now. */
export async function firstResponseOf(trx: Transaction<DB>, createdAt: Date, at: Date): Promise<FirstResponse> {
  const settings = await getPipelineSettings(trx)
  return { first_response_at: at, response_business_seconds: businessSeconds(createdAt, at, settings) }
}

/** The start of the caller's transaction: the `now()` its rows are stamped with. */
export async function transactionTime(trx: Transaction<DB>): Promise<Date> {
  const row = await trx.selectNoFrom((eb) => eb.fn<Date>('now').as('now')).executeTakeFirstOrThrow()
  return new Date(row.now)
}

/**
 * Records the first response of each lead that has none yet, from activities just written: the
 * earliest qualifying one of a lead, if it happened at or after the lead was created (and no later
 * than now). The row lock of the update makes a concurrent first contact wait, then find the column
 * set and leave it.
 */
export async function recordFirstResponses(
  trx: Transaction<DB>,
  activities: ReadonlyArray<{
    lead_id: number
    type: ActivityType
    direction: ActivityDirection | null
    occurred_at: Date | string
  }>,
): Promise<void> {
  const earliest = new Map<number, Date>()
  for (const activity of activities) {
    if (!isFirstResponse(activity)) continue
    const at = new Date(activity.occurred_at)
    const known = earliest.get(activity.lead_id)
    if (!known || at < known) earliest.set(activity.lead_id, at)
  }
  if (earliest.size === 0) return
  // A contact dated in the future (a meeting logged ahead) answers the lead no later than now.
  const now = await transactionTime(trx)
  const waiting = await trx
    .selectFrom('leads')
    .select(['id', 'created_at'])
    .where('id', 'in', [...earliest.keys()])
    .where('first_response_at', 'is', null)
    .execute()
  for (const lead of waiting) {
    const logged = earliest.get(lead.id) as Date
    const at = new Date(Math.min(logged.getTime(), now.getTime()))
    const createdAt = new Date(lead.created_at)
    if (at < createdAt) continue
    await trx
      .updateTable('leads')
      .set(await firstResponseOf(trx, createdAt, at))
      .where('id', '=', lead.id)
      .where('first_response_at', 'is', null)
      .execute()
  }
}

/**
 * Counts the business seconds of first responses written without them (taken from history by
 * db/migrations/20261207171000_first_response_history.sql, or by the demo seed), with today's settings, in batches of
 * `batch` leads per transaction until none is left. Returns how many it counted. Safe on several
 * instances at once: each batch skips the leads another holds.
 */
export async function countHistoricResponses(db: Database, batch = 1000): Promise<number> {
  let counted = 0
  for (;;) {
    const done = await db.transaction().execute(async (trx) => {
      const leads = await trx
        .selectFrom('leads')
        .select(['id', 'created_at', 'first_response_at'])
        .where('first_response_at', 'is not', null)
        .where('response_business_seconds', 'is', null)
        .orderBy('id')
        .limit(batch)
        .forUpdate()
        .skipLocked()
        .execute()
      if (leads.length === 0) return 0
      const settings = await getPipelineSettings(trx)
      const values = leads.map(
        (lead) =>
          sql`(${lead.id}::integer, ${businessSeconds(new Date(lead.created_at), new Date(lead.first_response_at as Date), settings)}::integer)`,
      )
      await sql`
        update leads set response_business_seconds = counted.seconds
        from (values ${sql.join(values)}) as counted (id, seconds)
        where leads.id = counted.id`.execute(trx)
      return leads.length
    })
    counted += done
    if (done < batch) return counted
  }
}
