import { leadStats, listLeads } from '/dashboard/api.js'
import {
  $,
  announce,
  failed,
  integer,
  localized,
  personName,
  shell,
  startPage,
  t,
  translateShell,
  words,
} from '/dashboard/shell.js'

// The filters this list takes from its URL, named (and repeatable) as GET /leads names them.
const FILTERS = ['status', 'channel', 'assigned_to', 'created_from', 'created_to']
const PAGE = 50
const state = { items: [], total: 0, next: null, sellers: new Map() }

function filters() {
  const query = new URLSearchParams(location.search)
  const kept = new URLSearchParams()
  for (const name of FILTERS) for (const value of query.getAll(name)) if (value) kept.append(name, value)
  return kept
}

const dayFormat = () => new Intl.DateTimeFormat(shell.language, { dateStyle: 'medium', timeZone: 'UTC' })
const day = (date) => dayFormat().format(new Date(`${date}T00:00:00Z`))

function sellerName(userId) {
  if (userId === null || userId === 'none') return t('unassigned')
  return state.sellers.get(Number(userId)) ?? `#${userId}`
}

/** The filters in words, e.g. "Nuevo · Web · desde el 1 nov 2026". */
function describe(query) {
  const parts = [
    query
      .getAll('status')
      .map((status) => words().statuses[status] ?? status)
      .join(', '),
    query
      .getAll('channel')
      .map((channel) => words().channelNames[channel] ?? channel)
      .join(', '),
    query.getAll('assigned_to').map(sellerName).join(', '),
    query.get('created_from') ? t('sinceDate', { date: day(query.get('created_from')) }) : '',
    query.get('created_to') ? t('untilDate', { date: day(query.get('created_to')) }) : '',
  ].filter(Boolean)
  return parts.length === 0 ? t('allLeads') : parts.join(' · ')
}

function cell(content, header = false) {
  const element = document.createElement(header ? 'th' : 'td')
  if (header) element.scope = 'row'
  element.append(content)
  return element
}

function leadRow(lead) {
  const link = document.createElement('a')
  link.href = localized(`/dashboard/leads/${lead.id}`)
  link.textContent = `#${lead.id}`
  const client = lead.client.company_name
    ? `${lead.client.contact_name} (${lead.client.company_name})`
    : lead.client.contact_name
  const row = document.createElement('tr')
  row.append(
    cell(link, true),
    cell(client),
    cell(words().statuses[lead.status]),
    cell(words().channelNames[lead.channel]),
    cell(sellerName(lead.assigned_to)),
    cell(day(lead.created_at.slice(0, 10))),
  )
  return row
}

function render() {
  translateShell('leadsPageTitle')
  const query = filters()
  // Back to the figures with the filters the dashboard has (its channel and seller: one each).
  const back = new URLSearchParams()
  for (const name of ['created_from', 'created_to', 'channel', 'assigned_to']) {
    const values = query.getAll(name)
    if (values.length === 1) back.set(name, values[0])
  }
  $('back').href = localized('/dashboard', back)
  $('home').href = localized('/dashboard')
  $('leads-heading').textContent = describe(query)
  $('leads').tBodies[0].replaceChildren(...state.items.map(leadRow))
  const count = t(state.total === 1 ? 'leadsCountOne' : 'leadsCount', { total: integer(state.total) })
  const shown =
    state.items.length < state.total
      ? ` ${t('shownOf', { shown: integer(state.items.length), total: integer(state.total) })}`
      : ''
  $('leads-count').textContent = state.total === 0 ? t('noLeads') : `${count}${shown}`
  $('more').hidden = !state.next
}

async function load(cursor) {
  announce(t('loading'))
  try {
    const query = filters()
    query.set('limit', String(PAGE))
    if (cursor) query.set('cursor', cursor)
    const [page, stats] = await Promise.all([
      listLeads(query),
      // The sellers' names: /users is for admins only, the stats of the same leads name them for all.
      cursor ? undefined : leadStats(filters()),
    ])
    if (stats) state.sellers = new Map(stats.by_assignee.map((row) => [row.user_id, personName(row)]))
    state.items = cursor ? [...state.items, ...page.items] : page.items
    state.total = page.total
    state.next = page.next_cursor
    render()
    announce(t('loaded', { total: integer(page.total) }))
  } catch (error) {
    failed(error)
  }
}

$('more').addEventListener('click', async () => {
  const first = state.items.length
  await load(state.next)
  // Where the new rows start, so that keyboard users carry on from there.
  $('leads').tBodies[0].rows[first]?.querySelector('a')?.focus()
})

startPage({
  content: $('content'),
  translate: render,
  show: () => load(),
  signedIn: () => $('main').focus(),
  signedOut() {
    Object.assign(state, { items: [], total: 0, next: null })
  },
})
