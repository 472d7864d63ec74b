// The lead.stale event: once per stay of a lead in a status, whichever instances look.
import { type SqlBool, sql } from 'kysely'
import { systemActor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import { eventsWritten, writeEvent } from '../events/outbox.js'
import { STALE_TERMS, STAY_START, withClient } from './queries.js'

const BATCH = 100

/**
 * Writes a `lead.stale` event for each live lead stale in a stay not yet published, with the start
 * of that stay in stale_published_for, in one transaction a batch. Rows another instance holds are
 * skipped (it publishes them); a row it just committed is checked again and found published. A new
 * activity or status change starts a new stay, which may be published in turn. Returns the count.
 */
export async function publishStaleLeads(db: Database): Promise<number> {
  let published = 0
  for (;;) {
    const count = await db.transaction().execute(async (trx) => {
      const leads = await withClient(trx.selectFrom('leads'))
        .where('leads.deleted_at', 'is', null)
        .where(STALE_TERMS)
        .where(sql<SqlBool>`leads.stale_published_for is distinct from ${STAY_START}`)
        .orderBy('leads.id')
        .limit(BATCH)
        .forUpdate('leads')
        .skipLocked()
        .execute()
      if (leads.length === 0) return 0
      await trx
        .updateTable('leads')
        .set({ stale_published_for: STAY_START })
        .where(
          'id',
          'in',
          leads.map((lead) => lead.id),
        )
        .execute()
      await writeEvent(
        trx,
        systemActor(),
        leads.map((lead) => ({
          type: 'lead.stale' as const,
          resource: 'lead' as const,
          id: lead.id,
          old: { stale: false },
          new: { stale: true },
          object: lead,
        })),
      )
      return leads.length
    })
    if (count > 0) eventsWritten.emit('written')
    published += count
    if (count < BATCH) return published
  }
}
