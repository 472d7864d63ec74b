import type { Transaction } from 'kysely'
import { assertActiveUser } from '../auth/active-user.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import type { DB, LeadStatus } from '../db/types.js'
import { DomainError, ForbiddenError, ValidationError } from '../errors/domain.js'
import { assignLead, changeLeadStatus, lockLead, trashLead } from './commands.js'
import { lostReasonFor } from './deal.js'
import type { Lead } from './queries.js'
import { LEAD_ACTION_ROLES } from './transitions.js'

export interface BulkRequest {
  action: 'assign' | 'status' | 'delete'
  assigned_to?: number | null
  status?: LeadStatus
  lost_reason?: string
  items?: Array<{ id: number; if_match?: string }>
  ids?: number[]
}

export interface BulkResult {
  id: number
  status: number
  error?: { code: string; detail: string } & Record<string, unknown>
}

/** The change of one lead, by the single route's service, given the body's parameters checked once. */
function changeOf(
  request: BulkRequest,
  actor: AuthenticatedActor,
): (trx: Transaction<DB>, id: number) => Promise<unknown> {
  switch (request.action) {
    case 'assign': {
      if (request.assigned_to === undefined) throw ValidationError.field('assigned_to', 'is required for assign')
      const assignee = request.assigned_to
      return (trx, id) => assignLead(trx, actor, id, assignee)
    }
    case 'status': {
      if (request.status === undefined) throw ValidationError.field('status', 'is required for status')
      const { status, lost_reason } = request
      return (trx, id) => changeLeadStatus(trx, actor, id, status, lost_reason)
    }
    case 'delete':
      return (trx, id) => trashLead(trx, actor, id)
  }
}

/**
 * POST /leads/bulk: each lead in its own transaction, by the rules of its single route (role, scope,
 * transitions, If-Match), so that one lead's failure leaves the others done. Domain errors become that
 * item's status; anything else (the database gone) ends the request as it would a single one.
 */
export async function runBulk(
  db: Database,
  actor: AuthenticatedActor,
  request: BulkRequest,
  /** Throws 412 unless `ifMatch` matches the lead's ETag as GET /leads/{id} answers it. */
  assertMatches: (ifMatch: string, lead: Lead) => void,
): Promise<BulkResult[]> {
  if ((request.items === undefined) === (request.ids === undefined)) {
    throw ValidationError.field('items', 'send either items or ids')
  }
  if (request.action !== 'assign' && request.assigned_to !== undefined) {
    throw ValidationError.field('assigned_to', 'is only for action assign')
  }
  if (request.action !== 'status' && request.status !== undefined) {
    throw ValidationError.field('status', 'is only for action status')
  }
  if (request.action !== 'status' && request.lost_reason !== undefined) {
    throw ValidationError.field('lost_reason', 'is only for action status')
  }
  // A reason missing, or not in the list, would fail every item alike: the request is the mistake.
  if (request.action === 'status' && request.status !== undefined) {
    const { status, lost_reason } = request
    await db.transaction().execute((trx) => lostReasonFor(trx, status, lost_reason))
  }
  const items = request.items ?? (request.ids ?? []).map((id) => ({ id, if_match: undefined }))
  const change = changeOf(request, actor)
  if (!(LEAD_ACTION_ROLES[request.action] as readonly string[]).includes(actor.role)) {
    const refused = new ForbiddenError()
    return items.map((item) => ({ id: item.id, status: 403, error: { code: refused.code, detail: refused.message } }))
  }
  // An assignee who is not an active user would fail every item alike: the request is the mistake.
  if (request.action === 'assign' && request.assigned_to != null) {
    const assignee = request.assigned_to
    await db.transaction().execute((trx) => assertActiveUser(trx, assignee, 'assigned_to'))
  }

  const results: BulkResult[] = []
  for (const item of items) {
    try {
      await db.transaction().execute(async (trx) => {
        if (item.if_match !== undefined) assertMatches(item.if_match, await lockLead(trx, actor, item.id))
        await change(trx, item.id)
      })
      results.push({ id: item.id, status: 200 })
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
      results.push({
        id: item.id,
        status: error.status,
        error: { code: error.code, detail: error.message, ...error.extra },
      })
    }
  }
  return results
}
