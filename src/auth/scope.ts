import type { Database } from '../db/database.js'
import type { AuthenticatedActor } from './authenticate.js'

type ScopedActor = Pick<AuthenticatedActor, 'role' | 'userId'>

/**
 * The sales scope, the one place it is decided: sales users see only the leads assigned to them
 * (and what hangs off those), everyone else sees all. The assignee a reader is limited to, or
 * undefined when the reader sees every lead.
 */
export function scopedAssignee(actor: ScopedActor): number | undefined {
  return actor.role === 'sales' ? actor.userId : undefined
}

/**
 * Every read of leads starts here: leads in the trash are gone for everyone, and the sales scope
 * applies. A lead outside the scope does not exist for the caller (404, never 403).
 */
export function visibleLeads(db: Database, actor: ScopedActor) {
  const leads = db.selectFrom('leads').where('leads.deleted_at', 'is', null)
  const assignee = scopedAssignee(actor)
  return assignee === undefined ? leads : leads.where('leads.assigned_to', '=', assignee)
}

/**
 * Of these lead ids, the ones the actor may see. Admin and management see every lead, also those
 * since trashed or purged, as audit rows name them; sales users only the live ones assigned to them.
 */
export async function visibleLeadIds(db: Database, actor: ScopedActor, ids: number[]): Promise<Set<number>> {
  if (scopedAssignee(actor) === undefined) return new Set(ids)
  const rows = await visibleLeads(db, actor).select('leads.id').where('leads.id', 'in', ids).execute()
  return new Set(rows.map((row) => row.id))
}
