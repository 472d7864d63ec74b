import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'

/**
 * Every read of leads starts here: leads in the trash are gone for everyone; sales see only the
 * leads assigned to them, everyone else sees all. A lead outside the scope does not exist for the
 * caller (404, never 403).
 */
export function visibleLeads(db: Database, actor: Pick<AuthenticatedActor, 'role' | 'userId'>) {
  const leads = db.selectFrom('leads').where('leads.deleted_at', 'is', null)
  return actor.role === 'sales' ? leads.where('leads.assigned_to', '=', actor.userId) : leads
}

/**
 * Of these lead ids, the ones the actor may see. Admin and management see every lead, also those
 * since trashed or purged, as audit rows name them; sales users only the live ones assigned to them.
 */
export async function visibleLeadIds(
  db: Database,
  actor: Pick<AuthenticatedActor, 'role' | 'userId'>,
  ids: number[],
): Promise<Set<number>> {
  if (actor.role !== 'sales') return new Set(ids)
  const rows = await visibleLeads(db, actor).select('leads.id').where('leads.id', 'in', ids).execute()
  return new Set(rows.map((row) => row.id))
}
