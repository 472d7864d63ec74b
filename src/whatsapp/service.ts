import { sql, type Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import { type Actor, viaActor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { ConflictError } from '../errors/domain.js'
import type { InboundContact, InboundMessage } from '../inbound/service.js'
import { type Activity, recordActivity } from '../timeline/record.js'
import { cutMetaText, type OutboundMessage } from './graph.js'
import { senderPhoneCandidates } from './numbers.js'
import type { Contact, MessageStatus, WhatsAppMessage, WhatsAppNotification } from './schemas.js'

/** Meta's customer service window: free-form messages only this long after the customer's last one. */
export const SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000

const CONTACT_NAME_MAX = 200

export type DeliveryState = 'sent' | 'delivered' | 'read' | 'failed'

/** The states a status may move a message from: forward only, and a failure is final. */
const FORWARD_FROM: Record<DeliveryState, DeliveryState[]> = {
  sent: [],
  delivered: ['sent'],
  read: ['sent', 'delivered'],
  failed: ['sent', 'delivered'],
}

/** Who acts when Meta's webhook writes: `whatsapp:<phone number id>` in audit rows, and in events. */
export function whatsappActor(phoneNumberId: string, requestId: string): Actor {
  return viaActor({ type: 'whatsapp', id: null, name: phoneNumberId }, requestId)
}

export interface InboundItem {
  message: WhatsAppMessage
  /** The sender's profile name, when WhatsApp shared it. */
  profileName: string | undefined
}

/** Every message and status of every change of every entry, in the order Meta wrote them. */
export function notificationItems(notification: WhatsAppNotification): {
  messages: InboundItem[]
  statuses: MessageStatus[]
} {
  const messages: InboundItem[] = []
  const statuses: MessageStatus[] = []
  for (const entry of notification.entry) {
    for (const change of entry.changes) {
      const contacts: Contact[] = change.value.contacts ?? []
      for (const message of change.value.messages ?? []) {
        const sender =
          contacts.find((contact) => contact.wa_id === message.from) ??
          (contacts.length === 1 ? contacts[0] : undefined)
        // As long as a client's name may be (200 characters), counted as people see them.
        const name = Array.from(sender?.profile?.name?.trim() ?? '')
          .slice(0, CONTACT_NAME_MAX)
          .join('')
        messages.push({ message: message as WhatsAppMessage, profileName: name || undefined })
      }
      statuses.push(...(change.value.statuses ?? []))
    }
  }
  return { messages, statuses }
}

/**
 * What the timeline shows of a message: its text, or `[image]`, `[audio]`, … for the other
 * types (with the caption, or the text of a button or list reply, when there is one).
 */
export function messageBody(message: WhatsAppMessage): string {
  if (message.type === 'text') return message.text?.body ?? ''
  const content = message[message.type] as Record<string, unknown> | undefined
  const reply = content?.button_reply ?? content?.list_reply
  const words = [content?.caption, content?.text, (reply as { title?: unknown } | undefined)?.title, content?.emoji]
  const said = words.find((word): word is string => typeof word === 'string' && word.trim() !== '')
  return said ? `[${message.type}] ${said}` : `[${message.type}]`
}

/** The sender's number as E.164, from `wa_id` (digits without `+`). */
function senderNumber(message: WhatsAppMessage): string {
  return `+${message.from.replace(/^\+/, '')}`
}

/** Whether a message id is stored already (a redelivery), read before any lock is taken. */
export async function isMessageStored(db: Database, messageId: string): Promise<boolean> {
  const row = await db
    .selectFrom('lead_activities')
    .select('id')
    .where('external_id', '=', messageId)
    .executeTakeFirst()
  return row !== undefined
}

/**
 * What the inbound core files for one message: the sender (any form of the number; named after the
 * profile, else the number) and a `whatsapp` inbound activity keyed by the message id, on a lead of
 * channel whatsapp when a new one is needed.
 */
export function inboundOf(item: InboundItem): { contact: InboundContact; message: InboundMessage } {
  const { message } = item
  const from = senderNumber(message)
  return {
    contact: { phones: senderPhoneCandidates(message.from), name: item.profileName ?? from },
    message: {
      channel: 'whatsapp',
      activity: {
        type: 'whatsapp',
        direction: 'inbound',
        body: messageBody(message),
        occurred_at: new Date(Number(message.timestamp) * 1000),
        external_id: message.id,
        meta: { message_id: message.id, message_type: message.type, from },
      },
    },
  }
}

/** 409 outside_service_window unless the lead's client wrote on WhatsApp within the last 24 hours. */
export async function requireServiceWindow(db: Database, leadId: number): Promise<void> {
  const last = await db
    .selectFrom('lead_activities')
    .select((eb) => eb.fn.max('occurred_at').as('at'))
    .where('lead_id', '=', leadId)
    .where('type', '=', 'whatsapp')
    .where('direction', '=', 'inbound')
    .executeTakeFirst()
  const at = last?.at ? new Date(last.at) : null
  if (at && Date.now() - at.getTime() < SERVICE_WINDOW_MS) return
  throw new ConflictError(
    'outside_service_window',
    at
      ? `The client's last WhatsApp message was at ${at.toISOString()}, more than 24 hours ago: only a template may be sent`
      : 'The client has not written on WhatsApp: only a template may be sent',
    { last_inbound_at: at?.toISOString() ?? null },
  )
}

/** The outbound activity of a message the Graph API accepted, in state `sent`. */
export async function recordOutbound(
  trx: Transaction<DB>,
  actor: Actor,
  leadId: number,
  messageId: string,
  message: OutboundMessage,
): Promise<Activity> {
  const activity = await recordActivity(trx, actor, {
    lead_id: leadId,
    type: 'whatsapp',
    direction: 'outbound',
    body: 'text' in message ? message.text : `[template] ${message.template.name}`,
    external_id: messageId,
    meta: {
      message_id: messageId,
      state: 'sent' satisfies DeliveryState,
      ...('template' in message && { template: { name: message.template.name, language: message.template.language } }),
    },
  })
  // Meta's message ids are unique: the same id twice would be Meta's fault, not a retry of ours.
  if (!activity) throw new ConflictError('whatsapp_message_exists', `Message ${messageId} is already recorded`)
  return activity
}

/** A text of Meta's error as kept: cut to a sane length, null when Meta gave none. */
const metaTextOrNull = (text: string | undefined) => (text === undefined ? null : cutMetaText(text))

/**
 * Moves an outbound message's delivery state forward (sent → delivered → read; failed keeps Meta's
 * error), with its audit row. A status of an unknown message, an unknown state, or one that would
 * move backwards (a late `delivered` after `read`) changes nothing: answers false.
 */
export async function updateDeliveryState(trx: Transaction<DB>, actor: Actor, status: MessageStatus): Promise<boolean> {
  const next = status.status as DeliveryState
  const from = FORWARD_FROM[next]
  if (!from || from.length === 0) return false
  const current = await trx
    .selectFrom('lead_activities')
    .select(['id', 'meta'])
    .where('external_id', '=', status.id)
    .where('type', '=', 'whatsapp')
    .where('direction', '=', 'outbound')
    .forUpdate()
    .executeTakeFirst()
  const meta = (current?.meta ?? {}) as Record<string, unknown>
  if (!current || !from.includes(meta.state as DeliveryState)) return false
  const changedAt = new Date(Number(status.timestamp) * 1000).toISOString()
  const error = status.errors?.[0]
  const change: Record<string, unknown> = {
    state: next,
    state_changed_at: changedAt,
    ...(next === 'failed' &&
      error && {
        error: {
          code: error.code,
          title: metaTextOrNull(error.title),
          message: metaTextOrNull(error.message),
          details: metaTextOrNull(error.error_data?.details),
        },
      }),
  }
  await trx
    .updateTable('lead_activities')
    .set({ meta: sql`meta || ${JSON.stringify(change)}::jsonb` })
    .where('id', '=', current.id)
    .execute()
  await writeAudit(trx, actor, {
    table: 'lead_activities',
    recordId: current.id,
    action: 'update',
    oldValues: { meta },
    newValues: { meta: { ...meta, ...change } },
  })
  return true
}
