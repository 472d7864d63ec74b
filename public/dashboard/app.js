import { ApiError, currentUser, leadStats, session, signIn } from '/dashboard/api.js'
import { drawPerDay } from '/dashboard/chart.js'
import { LANGUAGES, MESSAGES, translate } from '/dashboard/i18n.js'

const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded']
const OPEN_STATUSES = ['new', 'contacted', 'quoted']
const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual']
// The filters the page keeps in its URL, named as /leads/stats names them.
const FILTERS = ['created_from', 'created_to', 'channel', 'assigned_to']

const $ = (id) => document.getElementById(id)
const state = { language: 'es', user: undefined, stats: undefined, sellers: [] }

const t = (key, values) => translate(state.language, key, values)
const words = () => MESSAGES[state.language]
const integer = (value) => new Intl.NumberFormat(state.language).format(value)
const percent = (value) =>
  new Intl.NumberFormat(state.language, { style: 'percent', maximumFractionDigits: 1 }).format(value)

function announce(message, isError = false) {
  const status = $('status')
  status.textContent = message
  status.classList.toggle('error', isError)
}

/** The filters and language in the URL, e.g. ?channel=web&created_from=2026-11-01&lang=en. */
function readUrl() {
  const query = new URLSearchParams(location.search)
  const language = query.get('lang')
  state.language = LANGUAGES.includes(language) ? language : 'es'
  return Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? '']))
}

function writeUrl(filters) {
  const query = new URLSearchParams()
  for (const name of FILTERS) if (filters[name]) query.set(name, filters[name])
  if (state.language !== 'es') query.set('lang', state.language)
  const search = query.toString()
  const url = `${location.pathname}${search ? `?${search}` : ''}`
  if (url !== `${location.pathname}${location.search}`) history.pushState(null, '', url)
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
    ...sellers.map((row) => option(String(row.user_id), row.username ?? `#${row.user_id}`)),
    option('none', t('unassigned')),
  )
  if (chosenSeller && !seller.querySelector(`option[value="${CSS.escape(chosenSeller)}"]`)) {
    seller.append(option(chosenSeller, `#${chosenSeller}`))
  }
  seller.value = chosenSeller
}

function translatePage() {
  document.documentElement.lang = state.language
  document.title = t('pageTitle')
  for (const element of document.querySelectorAll('[data-i18n]')) element.textContent = t(element.dataset.i18n)
  const language = $('language')
  const other = LANGUAGES.find((name) => name !== state.language)
  language.textContent = t('switchTo')
  language.lang = other
  renderOptions()
  if (state.user) renderUser()
  if (state.stats) renderStats(state.stats)
}

function cell(text, header = false) {
  const element = document.createElement(header ? 'th' : 'td')
  if (header) element.scope = 'row'
  element.textContent = text
  return element
}

/** Rows of label, count and share, the share also drawn as a bar. */
function renderBars(table, entries, total) {
  const rows = entries.map(([label, count]) => {
    const share = total === 0 ? 0 : count / total
    const bar = document.createElement('span')
    bar.className = 'bar'
    // At most half the cell, leaving room for the figure beside it even at 375 px.
    bar.style.width = `${(share * 50).toFixed(1)}%`
    const shareCell = cell(percent(share))
    shareCell.prepend(bar)
    const row = document.createElement('tr')
    row.append(cell(label, true), cell(integer(count)), shareCell)
    return row
  })
  table.tBodies[0].replaceChildren(...rows)
}

function renderStats(stats) {
  const open = OPEN_STATUSES.reduce((sum, status) => sum + stats.by_status[status], 0)
  $('kpi-total').textContent = integer(stats.total)
  $('kpi-open').textContent = integer(open)
  $('kpi-conversion').textContent = percent(stats.conversion_rate)

  renderBars(
    $('funnel'),
    STATUSES.map((status) => [words().statuses[status], stats.by_status[status]]),
    stats.total,
  )
  renderBars(
    $('channels'),
    CHANNELS.map((name) => [words().channelNames[name], stats.by_channel[name]]),
    stats.total,
  )

  const dayFormat = new Intl.DateTimeFormat(state.language, { dateStyle: 'medium', timeZone: 'UTC' })
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
      : t('perDaySummary', { days: integer(stats.per_day.length), created: integer(created), closed: integer(closed) })
  drawPerDay(
    $('per-day-chart'),
    stats.per_day,
    { date: t('date'), created: t('created'), closed: t('closed') },
    state.language,
  )

  $('sellers').tBodies[0].replaceChildren(
    ...stats.by_assignee.map((row) => {
      const tr = document.createElement('tr')
      const name = row.user_id === null ? t('unassigned') : (row.username ?? `#${row.user_id}`)
      tr.append(
        cell(name, true),
        cell(integer(row.total)),
        cell(integer(row.closed)),
        cell(percent(row.total ? row.closed / row.total : 0)),
      )
      return tr
    }),
  )
}

function renderUser() {
  const { username, role } = state.user
  const note = role === 'sales' ? ` ${t('ownNumbers')}` : ''
  $('who').textContent = `${t('signedInAs', { username, role: words().roles[role] ?? role })}${note}`
  // Sales users only ever see their own leads: a seller filter would have nothing to choose.
  $('seller-field').hidden = role === 'sales'
}

function showSignIn(message) {
  state.user = undefined
  state.stats = undefined
  $('dashboard').hidden = true
  $('sign-out').hidden = true
  $('sign-in').hidden = false
  announce(message ?? '', Boolean(message))
  $('username').focus()
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    session.token = null
    showSignIn(t('sessionEnded'))
  } else if (error instanceof ApiError) {
    announce(error.message, true)
  } else {
    announce(t('unreachable'), true)
  }
}

async function load() {
  const filters = readUrl()
  fillForm(filters)
  announce(t('loading'))
  try {
    const withoutSeller = { ...filters, assigned_to: '' }
    // The seller list comes from the same numbers without the seller filter.
    const [stats, unfiltered] = await Promise.all([
      leadStats(filters),
      filters.assigned_to && state.user.role !== 'sales' ? leadStats(withoutSeller) : undefined,
    ])
    state.stats = stats
    state.sellers = (unfiltered ?? stats).by_assignee
    renderOptions()
    renderStats(stats)
    announce(t('loaded', { total: integer(stats.total) }))
  } catch (error) {
    failed(error)
  }
}

async function start() {
  readUrl()
  translatePage()
  if (!session.token) return showSignIn()
  try {
    state.user = await currentUser()
  } catch (error) {
    return failed(error)
  }
  renderUser()
  $('sign-in').hidden = true
  $('dashboard').hidden = false
  $('sign-out').hidden = false
  await load()
}

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  announce(t('signingIn'))
  try {
    await signIn($('username').value, $('password').value)
    $('password').value = ''
    await start()
    $('created_from').focus()
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) announce(t('badCredentials'), true)
    else if (error instanceof ApiError && error.status === 429)
      announce(t('throttled', { seconds: error.retryAfter ?? '?' }), true)
    else failed(error)
  }
})

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

$('language').addEventListener('click', () => {
  const filters = state.user ? formFilters() : readUrl()
  state.language = LANGUAGES.find((name) => name !== state.language)
  writeUrl(filters)
  translatePage()
})

$('sign-out').addEventListener('click', () => {
  session.token = null
  showSignIn()
})

window.addEventListener('popstate', () => {
  readUrl()
  translatePage()
  if (state.user) load()
})

start()
