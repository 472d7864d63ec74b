import type { LeadStatus, UserLocale } from '../db/types.js'
import type { NotificationKind } from './rules.js'

export interface Mail {
  subject: string
  text: string
  html: string
}

/** What a template may show: the lead or the task as the event carried it, or the webhook that was disabled. */
export interface MailContext {
  publicUrl: string
  recipientName: string
  actorName: string
  /** The recipient's IANA zone, in which times are written. */
  timeZone?: string
  lead?: {
    id: number
    status: LeadStatus
    channel: string
    client: { contact_name: string; company_name: string | null; phone: string }
  }
  oldStatus?: LeadStatus
  webhook?: { id: number; url: string; reason: string }
  task?: { id: number; title: string; due_at: string; lead_id: number | null }
}

const STATUS_NAMES: Record<UserLocale, Record<LeadStatus, string>> = {
  es: { new: 'nuevo', contacted: 'contactado', quoted: 'cotizado', closed: 'cerrado', discarded: 'descartado' },
  en: { new: 'new', contacted: 'contacted', quoted: 'quoted', closed: 'closed', discarded: 'discarded' },
}

interface Wording {
  subject: string
  lines: string[]
  link: string
  /** The page the mail points to. */
  url: string
}

type Phrasebook = Record<NotificationKind, (context: MailContext) => Wording>

function clientName(context: MailContext): string {
  const client = context.lead?.client
  if (!client) return ''
  return client.company_name ? `${client.contact_name} (${client.company_name})` : client.contact_name
}

/** The dashboard's page of the lead (the JSON at /leads/{id} needs a token a browser does not send), in the mail's language. */
const leadUrl = (context: MailContext, locale: UserLocale) =>
  `${context.publicUrl}/dashboard/leads/${context.lead?.id}${locale === 'en' ? '?lang=en' : ''}`
const webhookUrl = (context: MailContext) => `${context.publicUrl}/webhooks/${context.webhook?.id}`
/** A task on a lead links to the lead's page (where its tasks are); any other task to the task itself. */
const taskUrl = (context: MailContext, locale: UserLocale) =>
  context.task?.lead_id == null
    ? `${context.publicUrl}/tasks/${context.task?.id}`
    : `${context.publicUrl}/dashboard/leads/${context.task.lead_id}${locale === 'en' ? '?lang=en' : ''}`

/** The task's due time on the recipient's clock, with the zone named. */
function dueTime(context: MailContext, locale: UserLocale): string {
  const timeZone = context.timeZone ?? 'UTC'
  const format = new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'short', timeZone })
  return `${format.format(new Date(context.task?.due_at ?? 0))} (${timeZone})`
}

const PHRASES: Record<UserLocale, Phrasebook> = {
  es: {
    lead_assigned: (c) => ({
      subject: `Te asignaron el lead #${c.lead?.id}: ${clientName(c)}`,
      lines: [
        `Hola ${c.recipientName}:`,
        `${c.actorName} te asignó el lead #${c.lead?.id} de ${clientName(c)} (${c.lead?.client.phone}).`,
        `Estado: ${STATUS_NAMES.es[c.lead?.status ?? 'new']}.`,
      ],
      link: 'Ver el lead',
      url: leadUrl(c, 'es'),
    }),
    lead_status_changed: (c) => ({
      subject: `El lead #${c.lead?.id} pasó a ${STATUS_NAMES.es[c.lead?.status ?? 'new']}`,
      lines: [
        `Hola ${c.recipientName}:`,
        `${c.actorName} cambió el estado de tu lead #${c.lead?.id} de ${clientName(c)} de ${STATUS_NAMES.es[c.oldStatus ?? 'new']} a ${STATUS_NAMES.es[c.lead?.status ?? 'new']}.`,
      ],
      link: 'Ver el lead',
      url: leadUrl(c, 'es'),
    }),
    inbound_lead: (c) => ({
      subject: `Nuevo lead sin asignar #${c.lead?.id}: ${clientName(c)}`,
      lines: [
        `Hola ${c.recipientName}:`,
        `Llegó el lead #${c.lead?.id} de ${clientName(c)} (${c.lead?.client.phone}) por ${c.actorName}, sin asignar.`,
      ],
      link: 'Ver el lead',
      url: leadUrl(c, 'es'),
    }),
    webhook_disabled: (c) => ({
      subject: `Webhook #${c.webhook?.id} desactivado`,
      lines: [
        `Hola ${c.recipientName}:`,
        `El webhook #${c.webhook?.id} (${c.webhook?.url}) fue desactivado: ${c.webhook?.reason}.`,
        'Revise el receptor y vuelva a activarlo con PATCH /webhooks/{id} {"is_active": true}.',
      ],
      link: 'Ver el webhook',
      url: webhookUrl(c),
    }),
    task_due: (c) => ({
      subject: `Recordatorio: ${c.task?.title}`,
      lines: [`Hola ${c.recipientName}:`, `Tu tarea #${c.task?.id} «${c.task?.title}» vence el ${dueTime(c, 'es')}.`],
      link: c.task?.lead_id == null ? 'Ver la tarea' : 'Ver el lead',
      url: taskUrl(c, 'es'),
    }),
  },
  en: {
    lead_assigned: (c) => ({
      subject: `Lead #${c.lead?.id} was assigned to you: ${clientName(c)}`,
      lines: [
        `Hello ${c.recipientName},`,
        `${c.actorName} assigned you lead #${c.lead?.id} of ${clientName(c)} (${c.lead?.client.phone}).`,
        `Status: ${STATUS_NAMES.en[c.lead?.status ?? 'new']}.`,
      ],
      link: 'Open the lead',
      url: leadUrl(c, 'en'),
    }),
    lead_status_changed: (c) => ({
      subject: `Lead #${c.lead?.id} moved to ${STATUS_NAMES.en[c.lead?.status ?? 'new']}`,
      lines: [
        `Hello ${c.recipientName},`,
        `${c.actorName} moved your lead #${c.lead?.id} of ${clientName(c)} from ${STATUS_NAMES.en[c.oldStatus ?? 'new']} to ${STATUS_NAMES.en[c.lead?.status ?? 'new']}.`,
      ],
      link: 'Open the lead',
      url: leadUrl(c, 'en'),
    }),
    inbound_lead: (c) => ({
      subject: `New unassigned lead #${c.lead?.id}: ${clientName(c)}`,
      lines: [
        `Hello ${c.recipientName},`,
        `Lead #${c.lead?.id} of ${clientName(c)} (${c.lead?.client.phone}) arrived through ${c.actorName}, unassigned.`,
      ],
      link: 'Open the lead',
      url: leadUrl(c, 'en'),
    }),
    webhook_disabled: (c) => ({
      subject: `Webhook #${c.webhook?.id} was disabled`,
      lines: [
        `Hello ${c.recipientName},`,
        `Webhook #${c.webhook?.id} (${c.webhook?.url}) was disabled: ${c.webhook?.reason}.`,
        'Check the receiver, then turn it back on with PATCH /webhooks/{id} {"is_active": true}.',
      ],
      link: 'Open the webhook',
      url: webhookUrl(c),
    }),
    task_due: (c) => ({
      subject: `Reminder: ${c.task?.title}`,
      lines: [`Hello ${c.recipientName},`, `Your task #${c.task?.id} "${c.task?.title}" is due ${dueTime(c, 'en')}.`],
      link: c.task?.lead_id == null ? 'Open the task' : 'Open the lead',
      url: taskUrl(c, 'en'),
    }),
  },
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character] as string)
}

/** The mail in the recipient's language, as plain text and as HTML where everything users typed is escaped. */
export function renderMail(kind: NotificationKind, locale: UserLocale, context: MailContext): Mail {
  const wording = PHRASES[locale][kind](context)
  const text = `${wording.lines.join('\n\n')}\n\n${wording.link}: ${wording.url}\n`
  const paragraphs = wording.lines.map((line) => `<p>${escapeHtml(line)}</p>`).join('\n')
  const html = `<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(wording.subject)}</title></head>
<body>
${paragraphs}
<p><a href="${escapeHtml(wording.url)}">${escapeHtml(wording.link)}</a></p>
</body></html>
`
  return { subject: wording.subject.replace(/[\r\n]+/g, ' '), text, html }
}
