// What every page of the dashboard shares: the language, the status line, signing in and out.
import { ApiError, currentUser, session, signIn } from '/dashboard/api.js'
import { LANGUAGES, MESSAGES, translate } from '/dashboard/i18n.js'

export const $ = (id) => document.getElementById(id)
/** The page's language and signed-in user (from /auth/me). */
export const shell = { language: 'es', user: undefined }

export const t = (key, values) => translate(shell.language, key, values)
export const words = () => MESSAGES[shell.language]
export const integer = (value) => new Intl.NumberFormat(shell.language).format(value)

/** A user as people read them: the full name when set, else the username. */
export const personName = (user) => user.full_name || user.username || `#${user.user_id ?? user.id}`

export function announce(message, isError = false) {
  const status = $('status')
  status.textContent = message
  status.classList.toggle('error', isError)
}

/** The language in the URL (`lang=en`); Spanish when absent or unknown. */
export function readLanguage() {
  const language = new URLSearchParams(location.search).get('lang')
  shell.language = LANGUAGES.includes(language) ? language : 'es'
}

/** `path` with `query` and the page's language, e.g. /dashboard/leads/7?lang=en. */
export function localized(path, query = new URLSearchParams()) {
  const copy = new URLSearchParams(query)
  copy.delete('lang')
  if (shell.language !== 'es') copy.set('lang', shell.language)
  const text = copy.toString()
  return text ? `${path}?${text}` : path
}

/** The words marked data-i18n, the document's language and the language button. */
export function translateShell(titleKey) {
  document.documentElement.lang = shell.language
  for (const element of document.querySelectorAll('[data-i18n]')) element.textContent = t(element.dataset.i18n)
  document.title = t(titleKey)
  const button = $('language')
  button.textContent = t('switchTo')
  button.lang = LANGUAGES.find((name) => name !== shell.language)
}

let page

function showSignIn(message) {
  shell.user = undefined
  page.content.hidden = true
  $('sign-out').hidden = true
  $('sign-in').hidden = false
  announce(message ?? '', Boolean(message))
  page.signedOut?.()
  $('username').focus()
}

/** What the page says when a call fails; a 401 (token expired or revoked) asks to sign in again. */
export function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    session.token = null
    showSignIn(t('sessionEnded'))
  } else if (error instanceof ApiError) {
    announce(error.message, true)
  } else {
    announce(t('unreachable'), true)
  }
}

async function enter() {
  if (!session.token) return showSignIn()
  try {
    shell.user = await currentUser()
  } catch (error) {
    return failed(error)
  }
  $('sign-in').hidden = true
  page.content.hidden = false
  $('sign-out').hidden = false
  await page.show()
}

/**
 * Starts a page. `content`: the element shown once signed in; `translate()`: writes the page's words
 * again (after a language switch); `show()`: loads and shows what the page is about, `shell.user` set;
 * `signedIn()`: after signing in through the form (where to move the focus); `signedOut()`: forgets
 * what was shown; `languageUrl()`: the URL to push when the language changes (default: this one).
 */
export function startPage(options) {
  page = options
  readLanguage()
  page.translate()

  $('sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    announce(t('signingIn'))
    try {
      await signIn($('username').value, $('password').value)
      $('password').value = ''
      await enter()
      page.signedIn?.()
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) announce(t('badCredentials'), true)
      else if (error instanceof ApiError && error.status === 429)
        announce(t('throttled', { seconds: error.retryAfter ?? '?' }), true)
      else failed(error)
    }
  })

  $('language').addEventListener('click', () => {
    const before = page.languageUrl?.() ?? location.href
    shell.language = LANGUAGES.find((name) => name !== shell.language)
    const url = new URL(before, location.href)
    const next = localized(url.pathname, url.searchParams)
    if (next !== `${location.pathname}${location.search}`) history.pushState(null, '', next)
    page.translate()
  })

  $('sign-out').addEventListener('click', () => {
    session.token = null
    showSignIn()
  })

  window.addEventListener('popstate', () => {
    readLanguage()
    page.translate()
    if (shell.user) page.show()
  })

  return enter()
}
