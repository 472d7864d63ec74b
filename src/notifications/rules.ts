import type { EventActor } from '../auth/actor.js'
import type { UserRole } from '../db/types.js'

export const NOTIFICATION_KINDS = ['lead_assigned', 'lead_status_changed', 'inbound_lead'] as const
/**
 * Kinds no event rule gives: a webhook disabled (admins), a task's reminder (its assignee, always),
 * the morning digest (planned by the clock, for users who asked for it).
 */
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number] | 'webhook_disabled' | 'task_due' | 'daily_digest'

/** What the rules read of an event. */
export interface NotifiableEvent {
  type: string
  actor: EventActor
  data: { object?: { assigned_to?: number | null } | null; new?: Record<string, unknown> | null }
}

/** What the events' rules give: kinds with a setting, and the reminder. */
export type Recipients = { kind: (typeof NOTIFICATION_KINDS)[number] | 'task_due' } & (
  | { userId: number }
  | { roles: UserRole[] }
)

const INBOUND_ACTORS: ReadonlyArray<EventActor['type']> = ['whatsapp', 'form']

/**
 * Who an event mails, before each user's settings are applied: the assignee of a lead assigned
 * to them by someone else, the assignee when someone else moves their lead, and admins and
 * management when a lead arrives unassigned from WhatsApp or a web form, the assignee of a task
 * whose reminder falls due.
 */
export function recipientsOf(event: NotifiableEvent): Recipients[] {
  const assignee = event.data.object?.assigned_to ?? null
  // A person acting through their own API key is still themselves.
  const actingUser = event.actor.type === 'api_key' ? event.actor.user_id : event.actor.id
  const byThemselves = (event.actor.type === 'user' || event.actor.type === 'api_key') && actingUser === assignee
  switch (event.type) {
    case 'lead.created':
      if (assignee === null) {
        return INBOUND_ACTORS.includes(event.actor.type)
          ? [{ kind: 'inbound_lead', roles: ['admin', 'management'] }]
          : []
      }
      return byThemselves ? [] : [{ kind: 'lead_assigned', userId: assignee }]
    case 'lead.assigned':
      return assignee === null || byThemselves ? [] : [{ kind: 'lead_assigned', userId: assignee }]
    case 'lead.status_changed':
      return assignee === null || byThemselves ? [] : [{ kind: 'lead_status_changed', userId: assignee }]
    case 'task.due':
      return assignee === null ? [] : [{ kind: 'task_due', userId: assignee }]
    default:
      return []
  }
}
