import { ApiError, getLead, leadActivities, leadStats } from '/dashboard/api.js'
import {
  $,
  announce,
  failed,
  localized,
  personName,
  shell,
  startPage,
  t,
  translateShell,
  words,
} from '/dashboard/shell.js'

// The lead's id from the path, /dashboard/leads/7 (the server serves this page for numeric ids only).
const id = location.pathname.split('/').at(-1)
const ACTIVITIES = 100
const state = { lead: undefined, activities: undefined, sellers: new Map(), missing: false }

const dateTime = (value) =>
  new Intl.DateTimeFormat(shell.language, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(value))
const clientName = (client) =>
  client.company_name ? `${client.contact_name} (${client.company_name})` : client.contact_name

function sellerName(userId) {
  if (userId === null || userId === undefined) return t('unassigned')
  if (userId === shell.user?.id) return personName(shell.user)
  return state.sellers.get(userId) ?? `#${userId}`
}

function render() {
  translateShell('leadPageTitle')
  $('home').href = localized('/dashboard')
  $('back').href = localized('/dashboard')
  const { lead, activities } = state
  const title = lead ? t('leadTitle', { id: lead.id, client: clientName(lead.client) }) : t('leadHeading')
  $('lead-title').textContent = title
  if (lead) document.title = `${title} · Mini CRM`
  $('missing').hidden = !state.missing
  $('missing-text').textContent = t('notFound', { id })
  $('lead').hidden = !lead
  if (!lead) return

  $('lead-client').textContent = lead.client.contact_name
  $('lead-company').textContent = lead.client.company_name ?? '–'
  $('lead-phone').textContent = lead.client.phone
  $('lead-status').textContent = words().statuses[lead.status]
  $('lead-channel').textContent = words().channelNames[lead.channel]
  $('lead-seller').textContent = sellerName(lead.assigned_to)
  $('lead-created').textContent = dateTime(lead.created_at)
  $('lead-status-changed').textContent = dateTime(lead.status_changed_at)
  $('lead-sales-notes').textContent = lead.sales_notes ?? ''
  $('sales-notes-row').hidden = !lead.sales_notes
  $('lead-admin-notes').textContent = lead.admin_notes ?? ''
  $('admin-notes-row').hidden = !lead.admin_notes

  $('timeline').replaceChildren(...activities.items.map(activityItem))
  $('timeline-note').textContent =
    activities.items.length === 0
      ? t('noActivities')
      : activities.next_cursor
        ? t('moreActivities', { shown: activities.items.length, total: activities.total })
        : ''
}

/** What an activity says: its text, or for the ones the system writes, what changed. */
function activityText(activity) {
  const { from, to } = activity.meta ?? {}
  if (activity.type === 'status_change')
    return t('statusMoved', { from: words().statuses[from] ?? '–', to: words().statuses[to] ?? to })
  if (activity.type === 'assignment') return to == null ? t('unassignedNow') : t('assignedTo', { name: sellerName(to) })
  return activity.body ?? ''
}

function activityItem(activity) {
  const item = document.createElement('li')
  const head = document.createElement('p')
  head.className = 'activity-head'
  const time = document.createElement('time')
  time.dateTime = activity.occurred_at
  time.textContent = dateTime(activity.occurred_at)
  const kind = document.createElement('strong')
  const direction = activity.direction ? ` (${words().directions[activity.direction]})` : ''
  kind.textContent = `${words().activityTypes[activity.type] ?? activity.type}${direction}`
  head.append(kind, ' · ', time)
  const body = document.createElement('p')
  body.className = 'activity-body'
  body.textContent = activityText(activity)
  item.append(head, body)
  return item
}

async function load() {
  announce(t('loading'))
  try {
    const [lead, activities] = await Promise.all([getLead(id), leadActivities(id, ACTIVITIES)])
    // Names of the sellers of this client's leads: /users is for admins only, the stats name them for all.
    const stats = shell.user.role === 'sales' ? undefined : await leadStats({ client_id: lead.client_id })
    state.sellers = new Map((stats?.by_assignee ?? []).map((row) => [row.user_id, personName(row)]))
    Object.assign(state, { lead, activities, missing: false })
    render()
    announce(t('leadLoaded', { id: lead.id, client: clientName(lead.client) }))
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      Object.assign(state, { lead: undefined, activities: undefined, missing: true })
      render()
      announce(t('notFoundTitle'), true)
    } else {
      failed(error)
    }
  }
}

startPage({
  content: $('content'),
  translate: render,
  show: load,
  signedIn: () => $('main').focus(),
  signedOut() {
    Object.assign(state, { lead: undefined, activities: undefined, missing: false })
  },
})
