import type { LeadStatus, UserLocale } from '../db/types.js'
import type { Digest, DigestLead, DigestTask } from './digest.js'
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
  digest?: Digest
}

const STATUS_NAMES: Record<UserLocale, Record<LeadStatus, string>> = {
  es: { new: 'nuevo', contacted: 'contactado', quoted: 'cotizado', closed: 'cerrado', discarded: 'descartado' },
  en: { new: 'new', contacted: 'contacted', quoted: 'quoted', closed: 'closed', discarded: 'discarded' },
}

/** A heading and its items, each with the page it links to. */
interface Section {
  heading: string
  items: Array<{ text: string; url: string }>
}

interface Wording {
  subject: string
  lines: string[]
  sections?: Section[]
  link: string
  /** The page the mail points to. */
  url: string
}

type Phrasebook = Record<NotificationKind, (context: MailContext) => Wording>

function clientName(context: MailContext): string {
  return context.lead ? nameOf(context.lead.client) : ''
}

function nameOf(client: { contact_name: string; company_name: string | null }): string {
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

/** The task's due time on the recipient's clock, shorter, for a line of the digest. */
function shortTime(dueAt: string, context: MailContext, locale: UserLocale): string {
  const format = new Intl.DateTimeFormat(locale, {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: context.timeZone ?? 'UTC',
  })
  return format.format(new Date(dueAt))
}

const dashboardUrl = (context: MailContext, path: string, locale: UserLocale) =>
  `${context.publicUrl}/dashboard${path}${locale === 'en' ? '?lang=en' : ''}`

const taskItem = (task: DigestTask, context: MailContext, locale: UserLocale) => ({
  text: `#${task.id} ${task.title} (${shortTime(task.due_at, context, locale)})`,
  url: taskUrl({ ...context, task }, locale),
})

const leadItem = (lead: DigestLead, context: MailContext, locale: UserLocale) => ({
  text: `#${lead.id} ${nameOf(lead.client)} (${STATUS_NAMES[locale][lead.status]})`,
  url: dashboardUrl(context, `/leads/${lead.id}`, locale),
})

/** The digest's four lists, those with something in them, each saying how many are not shown. */
function digestSections(
  context: MailContext,
  locale: UserLocale,
  headings: Record<DigestListName, string>,
  more: (count: number) => string,
): Section[] {
  const digest = context.digest
  if (!digest) return []
  return DIGEST_LISTS.flatMap((name) => {
    const list = digest[name]
    if (list.total === 0) return []
    const items =
      name === 'overdue_tasks' || name === 'tasks_today'
        ? (list.items as DigestTask[]).map((task) => taskItem(task, context, locale))
        : (list.items as DigestLead[]).map((lead) => leadItem(lead, context, locale))
    const hidden = list.total - list.items.length
    const heading = `${headings[name]} (${list.total})`
    return [
      {
        heading,
        items: hidden > 0 ? [...items, { text: more(hidden), url: dashboardUrl(context, '', locale) }] : items,
      },
    ]
  })
}

const DIGEST_LISTS = ['overdue_tasks', 'tasks_today', 'awaiting_first_response', 'stale_leads'] as const
type DigestListName = (typeof DIGEST_LISTS)[number]

/** The local date of the digest, written out in the mail's language. */
function digestDate(context: MailContext, locale: UserLocale): string {
  const date = context.digest?.date ?? '1970-01-01'
  return new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeZone: 'UTC' }).format(new Date(`${date}T00:00:00Z`))
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
    daily_digest: (c) => ({
      subject: `Tu día: ${digestDate(c, 'es')}`,
      lines: [`Hola ${c.recipientName}:`, 'Esto es lo que tienes pendiente hoy.'],
      sections: digestSections(
        c,
        'es',
        {
          overdue_tasks: 'Tareas vencidas',
          tasks_today: 'Tareas para hoy',
          awaiting_first_response: 'Leads esperando una primera respuesta',
          stale_leads: 'Leads estancados',
        },
        (count) => `y ${count} más`,
      ),
      link: 'Abrir el panel',
      url: dashboardUrl(c, '', 'es'),
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
    daily_digest: (c) => ({
      subject: `Your day: ${digestDate(c, 'en')}`,
      lines: [`Hello ${c.recipientName},`, 'Here is what is waiting for you today.'],
      sections: digestSections(
        c,
        'en',
        {
          overdue_tasks: 'Overdue tasks',
          tasks_today: 'Tasks due today',
          awaiting_first_response: 'Leads awaiting a first response',
          stale_leads: 'Stale leads',
        },
        (count) => `and ${count} more`,
      ),
      link: 'Open the dashboard',
      url: dashboardUrl(c, '', 'en'),
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
  const sections = wording.sections ?? []
  const textSections = sections.map(
    (section) => `${section.heading}:\n${section.items.map((item) => `- ${item.text}: ${item.url}`).join('\n')}`,
  )
  const text = `${[...wording.lines, ...textSections].join('\n\n')}\n\n${wording.link}: ${wording.url}\n`
  const htmlSections = sections.map(
    (section) =>
      `<h2>${escapeHtml(section.heading)}</h2>\n<ul>\n${section.items
        .map((item) => `<li><a href="${escapeHtml(item.url)}">${escapeHtml(item.text)}</a></li>`)
        .join('\n')}\n</ul>`,
  )
  const paragraphs = [...wording.lines.map((line) => `<p>${escapeHtml(line)}</p>`), ...htmlSections].join('\n')
  const html = `<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(wording.subject)}</title></head>
<body>
${paragraphs}
<p><a href="${escapeHtml(wording.url)}">${escapeHtml(wording.link)}</a></p>
</body></html>
`
  return { subject: wording.subject.replace(/[\r\n]+/g, ' '), text, html }
}
