// What the counter tables of the stats share: their channel and assignee keys.
import { type Expression, type SqlBool, sql } from 'kysely'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { scopedAssignee } from '../auth/scope.js'
import { type LeadFilter, parseAssignees } from './queries.js'

/** The channel and assignee filters, and the sales scope, on unqualified `channel` and `assigned_to`. */
export function keyConditions(actor: AuthenticatedActor, filter: LeadFilter): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = []
  if (filter.channel?.length) conditions.push(sql<SqlBool>`channel = any(${filter.channel})`)
  const assignee = scopedAssignee(actor)
  if (assignee !== undefined) conditions.push(sql<SqlBool>`assigned_to = ${assignee}`)
  const assignees = parseAssignees(actor, filter.assigned_to)
  if (assignees) {
    const { ids, unassigned } = assignees
    conditions.push(
      sql<SqlBool>`(assigned_to = any(${ids}::int[]) ${unassigned ? sql`or assigned_to is null` : sql``})`,
    )
  }
  return conditions
}
