import type { LeadStatus, UserRole } from '../db/types.js'
import { ConflictError } from '../errors/domain.js'

/** Where each status may go next. closed and discarded are final, but see REOPEN. */
const NEXT: Record<LeadStatus, readonly LeadStatus[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: [],
  discarded: [],
}

/** Admin and management may reopen a final lead, to contacted only. */
const REOPEN = { from: ['closed', 'discarded'] as readonly LeadStatus[], to: 'contacted' as LeadStatus }
const MAY_REOPEN: readonly UserRole[] = ['admin', 'management']

function allowedNextStatuses(from: LeadStatus, role: UserRole): LeadStatus[] {
  const next = [...NEXT[from]]
  if (REOPEN.from.includes(from) && MAY_REOPEN.includes(role)) next.push(REOPEN.to)
  return next
}

/** Refuses a move the table does not allow for this role with 409 invalid_transition. */
export function assertTransition(from: LeadStatus, to: LeadStatus, role: UserRole): void {
  const allowed = allowedNextStatuses(from, role)
  if (allowed.includes(to)) return
  const options = allowed.length > 0 ? `allowed: ${allowed.join(', ')}` : 'it is final for your role'
  throw new ConflictError('invalid_transition', `A ${from} lead cannot become ${to} (${options})`, {
    current_status: from,
    allowed,
  })
}
