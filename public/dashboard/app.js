import { leadStats, overdueTasks, staleLeads } from '/dashboard/api.js'
import { drawPerDay } from '/dashboard/chart.js'
import {
  $,
  announce,
  failed,
  integer,
  localized,
  personName,
  readLanguage,
  shell,
  startPage,
  t,
  translateShell,
  words,
} from '/dashboard/shell.js'

const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded']
const OPEN_STATUSES = ['new', 'contacted', 'quoted']
const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual']
// The filters the page keeps in its URL, named as /leads/stats names them.
const FILTERS = ['created_from', 'created_to', 'channel', 'assigned_to']

// `filters`: the ones the figures were drawn with, which their links carry to the list of leads.
const state = { stats: undefined, overdue: undefined, sellers: [], filters: {} }

const percent = (value) =>
  new Intl.NumberFormat(shell.language, { style: 'percent', maximumFractionDigits: 1 }).format(value)

/** A span of seconds as people read it: "45 s", "12 min", "3 h 5 min", "2 d 4 h"; a dash for none. */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return t('noAnswer')
  const unit = (value, name) =>
    new Intl.NumberFormat(shell.language, { style: 'unit', unit: name, unitDisplay: 'short' }).format(value)
  if (seconds < 60) return unit(seconds, 'second')
  const minutes = Math.round(seconds / 60)
  if (minutes < 60) return unit(minutes, 'minute')
  const hours = Math.floor(minutes / 60)
  if (hours < 24) return minutes % 60 ? `${unit(hours, 'hour')} ${unit(minutes % 60, 'minute')}` : unit(hours, 'hour')
  const days = Math.floor(hours / 24)
  return hours % 24 ? `${unit(days, 'day')} ${unit(hours % 24, 'hour')}` : unit(days, 'day')
}

const ratio = (value) => (value === null ? t('noAnswer') : percent(value))

/** The filters and language in the URL, e.g. ?channel=web&created_from=2026-11-01&lang=en. */
function readUrl() {
  readLanguage()
  const query = new URLSearchParams(location.search)
  return Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? '']))
}

function urlOf(filters) {
  const query = new URLSearchParams()
  for (const name of FILTERS) if (filters[name]) query.set(name, filters[name])
  return localized(location.pathname, query)
}

function writeUrl(filters) {
  const url = urlOf(filters)
  if (url !== `${location.pathname}${location.search}`) history.pushState(null, '', url)
}

/** The list of the leads behind a figure: the page's filters, narrowed (or replaced) by `narrower`. */
function leadsUrl(narrower = {}) {
  const query = new URLSearchParams()
  for (const name of FILTERS) if (state.filters[name] && !(name in narrower)) query.set(name, state.filters[name])
  for (const [name, values] of Object.entries(narrower)) for (const value of [values].flat()) query.append(name, value)
  return localized('/dashboard/leads', query)
}

function link(text, href) {
  const element = document.createElement('a')
  element.href = href
  element.textContent = text
  return element
}

function formFilters() {
  const form = new FormData($('filters'))
  return Object.fromEntries(FILTERS.map((name) => [name, String(form.get(name) ?? '')]))
}

function fillForm(filters) {
  for (const name of FILTERS) {
    const field = $(name)
    // A seller not in the list yet (first load) still has to be selectable.
    if (
      field instanceof HTMLSelectElement &&
      filters[name] &&
      !field.querySelector(`option[value="${CSS.escape(filters[name])}"]`)
    ) {
      field.append(new Option(filters[name], filters[name]))
    }
    field.value = filters[name]
  }
}

function option(value, label) {
  return new Option(label, value)
}

function renderOptions() {
  const channel = $('channel')
  const chosenChannel = channel.value
  channel.replaceChildren(
    option('', t('allChannels')),
    ...CHANNELS.map((name) => option(name, words().channelNames[name])),
  )
  channel.value = chosenChannel

  const seller = $('assigned_to')
  const chosenSeller = seller.value
  const sellers = state.sellers.filter((row) => row.user_id !== null)
  seller.replaceChildren(
    option('', t('allSellers')),
    ...sellers.map((row) => option(String(row.user_id), personName(row))),
    option('none', t('unassigned')),
  )
  if (chosenSeller && !seller.querySelector(`option[value="${CSS.escape(chosenSeller)}"]`)) {
    seller.append(option(chosenSeller, `#${chosenSeller}`))
  }
  seller.value = chosenSeller
}

function translatePage() {
  translateShell('pageTitle')
  renderOptions()
  if (shell.user) renderUser()
  if (state.stats) renderStats(state.stats)
  if (state.overdue !== undefined) renderOverdue(state.overdue)
}

function renderOverdue(total) {
  $('kpi-overdue').textContent = integer(total)
}

/** A cell of `content`: text, or an element such as a link. */
function cell(content, header = false) {
  const element = document.createElement(header ? 'th' : 'td')
  if (header) element.scope = 'row'
  element.append(content)
  return element
}

/** Rows of label, count (a link to those leads) and share, the share also drawn as a bar. */
function renderBars(table, entries, total) {
  const rows = entries.map(([label, count, href]) => {
    const share = total === 0 ? 0 : count / total
    const bar = document.createElement('span')
    bar.className = 'bar'
    // At most half the cell, leaving room for the figure beside it even at 375 px.
    bar.style.width = `${(share * 50).toFixed(1)}%`
    const shareCell = cell(percent(share))
    shareCell.prepend(bar)
    const row = document.createElement('tr')
    row.append(cell(label, true), cell(link(integer(count), href)), shareCell)
    return row
  })
  table.tBodies[0].replaceChildren(...rows)
}

function renderStats(stats) {
  const open = OPEN_STATUSES.reduce((sum, status) => sum + stats.by_status[status], 0)
  $('kpi-total').replaceChildren(link(integer(stats.total), leadsUrl()))
  $('kpi-open').replaceChildren(link(integer(open), leadsUrl({ status: OPEN_STATUSES })))
  $('kpi-conversion').textContent = percent(stats.conversion_rate)

  renderBars(
    $('funnel'),
    STATUSES.map((status) => [words().statuses[status], stats.by_status[status], leadsUrl({ status })]),
    stats.total,
  )
  renderBars(
    $('channels'),
    CHANNELS.map((name) => [words().channelNames[name], stats.by_channel[name], leadsUrl({ channel: name })]),
    stats.total,
  )

  const dayFormat = new Intl.DateTimeFormat(shell.language, { dateStyle: 'medium', timeZone: 'UTC' })
  $('per-day').tBodies[0].replaceChildren(
    ...stats.per_day.map((day) => {
      const row = document.createElement('tr')
      row.append(
        cell(dayFormat.format(new Date(`${day.date}T00:00:00Z`)), true),
        cell(integer(day.created)),
        cell(integer(day.closed)),
      )
      return row
    }),
  )
  const created = stats.per_day.reduce((sum, day) => sum + day.created, 0)
  const closed = stats.per_day.reduce((sum, day) => sum + day.closed, 0)
  $('per-day-summary').textContent =
    stats.per_day.length === 0
      ? t('noDays')
      : t(stats.per_day.length === 1 ? 'perDaySummaryOne' : 'perDaySummary', {
          days: integer(stats.per_day.length),
          created: integer(created),
          closed: integer(closed),
        })
  drawPerDay(
    $('per-day-chart'),
    stats.per_day,
    { date: t('date'), created: t('created'), closed: t('closed') },
    shell.language,
  )

  const response = stats.response_time
  $('response-median').textContent = duration(response.median_seconds)
  $('response-p90').textContent = duration(response.p90_seconds)
  $('response-within').textContent = ratio(response.within_target_ratio)
  $('response-waiting').textContent = integer(response.waiting)
  $('response-sellers').tBodies[0].replaceChildren(
    ...stats.by_assignee.map((row) => {
      const tr = document.createElement('tr')
      tr.append(
        cell(row.user_id === null ? t('unassigned') : personName(row), true),
        cell(duration(row.response_time.median_seconds)),
        cell(duration(row.response_time.p90_seconds)),
        cell(ratio(row.response_time.within_target_ratio)),
        cell(integer(row.response_time.waiting)),
      )
      return tr
    }),
  )

  $('sellers').tBodies[0].replaceChildren(
    ...stats.by_assignee.map((row) => {
      const tr = document.createElement('tr')
      const name = row.user_id === null ? t('unassigned') : personName(row)
      tr.append(
        cell(name, true),
        cell(link(integer(row.total), leadsUrl({ assigned_to: row.user_id === null ? 'none' : String(row.user_id) }))),
        cell(integer(row.closed)),
        cell(percent(row.total ? row.closed / row.total : 0)),
      )
      return tr
    }),
  )
}

function renderUser() {
  const { username, role } = shell.user
  const note = role === 'sales' ? ` ${t('ownNumbers')}` : ''
  $('who').textContent = `${t('signedInAs', { username, role: words().roles[role] ?? role })}${note}`
  // Sales users only ever see their own leads: a seller filter would have nothing to choose.
  $('seller-field').hidden = role === 'sales'
}

async function load() {
  const filters = readUrl()
  fillForm(filters)
  announce(t('loading'))
  try {
    const withoutSeller = { ...filters, assigned_to: '' }
    // The seller list comes from the same numbers without the seller filter.
    const [stats, unfiltered, overdue, stale] = await Promise.all([
      leadStats(filters),
      filters.assigned_to && shell.user.role !== 'sales' ? leadStats(withoutSeller) : undefined,
      overdueTasks(),
      staleLeads(filters),
    ])
    state.stats = stats
    state.overdue = overdue.total
    renderOverdue(overdue.total)
    $('kpi-stale').textContent = integer(stale.total)
    state.filters = filters
    state.sellers = (unfiltered ?? stats).by_assignee
    renderOptions()
    renderStats(stats)
    announce(t('loaded', { total: integer(stats.total) }))
  } catch (error) {
    failed(error)
  }
}

$('filters').addEventListener('submit', (event) => {
  event.preventDefault()
  writeUrl(formFilters())
  load()
})

$('filters').addEventListener('reset', () => {
  // After the form has cleared its fields.
  setTimeout(() => {
    writeUrl(formFilters())
    load()
  })
})

startPage({
  content: $('dashboard'),
  translate: translatePage,
  show() {
    renderUser()
    return load()
  },
  signedIn: () => $('created_from').focus(),
  signedOut() {
    state.stats = undefined
  },
  // The filters as chosen in the form go into the URL with the language.
  languageUrl: () => (shell.user ? urlOf(formFilters()) : location.href),
})
