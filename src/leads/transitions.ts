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

/** The table in words, for the OpenAPI document: `new → contacted | quoted | …; closed and discarded are final, …`. */
export function describeTransitions(): string {
  const moves = Object.entries(NEXT)
    .filter(([, next]) => next.length > 0)
    .map(([from, next]) => `${from} → ${next.join(' | ')}`)
  const final = Object.keys(NEXT).filter((status) => NEXT[status as LeadStatus].length === 0)
  return `${moves.join('; ')}; ${final.join(' and ')} are final, but ${MAY_REOPEN.join(' and ')} may reopen them to ${REOPEN.to}.`
}

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

/** Who may take each action on a lead: the single routes and POST /leads/bulk both read this. */
export const LEAD_ACTION_ROLES = {
  assign: ['admin', 'management'],
  status: ['admin', 'management', 'sales'],
  delete: ['admin', 'management'],
  restore: ['admin', 'management'],
} as const satisfies Record<string, readonly UserRole[]>
