// Calls to the public API with the tab's token. sessionStorage: the token lives as long as the tab.
const TOKEN_KEY = 'mini-crm.access_token'

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`)
    this.status = status
    this.problem = problem
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY)
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value)
    else sessionStorage.removeItem(TOKEN_KEY)
  },
}

async function call(path, init = {}) {
  const headers = new Headers(init.headers)
  headers.set('accept', 'application/json')
  if (session.token) headers.set('authorization', `Bearer ${session.token}`)
  const response = await fetch(path, { ...init, headers })
  const body = await response.json().catch(() => undefined)
  if (!response.ok) {
    const error = new ApiError(response.status, body)
    error.retryAfter = response.headers.get('retry-after')
    throw error
  }
  return body
}

/** POST /auth/login as a form, the way the OAuth2 password flow sends it. */
export async function signIn(username, password) {
  const { access_token } = await call('/auth/login', {
    method: 'POST',
    body: new URLSearchParams({ username, password }),
  })
  session.token = access_token
}

export const currentUser = () => call('/auth/me')

/** GET /leads/stats with the given filters, an object or URLSearchParams (empty ones left out). */
export function leadStats(filters) {
  const query = new URLSearchParams()
  for (const [name, value] of filters instanceof URLSearchParams ? filters : Object.entries(filters))
    if (value) query.append(name, value)
  const text = query.toString()
  return call(text ? `/leads/stats?${text}` : '/leads/stats')
}

/** GET /leads/{id}: 404 when it does not exist, is in the trash, or (for sales) is someone else's. */
export const getLead = (id) => call(`/leads/${encodeURIComponent(id)}`)

/** GET /leads/{id}/activities, newest first. */
export const leadActivities = (id, limit = 100) => call(`/leads/${encodeURIComponent(id)}/activities?limit=${limit}`)

/** GET /leads with `query` (URLSearchParams: repeatable filters, limit, cursor). */
export const listLeads = (query) => call(`/leads?${query}`)

/** GET /tasks?status=overdue (the caller's scope), one item: its `total` is what the page shows. */
export const overdueTasks = () => call('/tasks?status=overdue&limit=1')

/** GET /leads?stale=true with the page's filters (they are the list's too), one item: its `total`. */
export function staleLeads(filters) {
  const query = new URLSearchParams({ stale: 'true', limit: '1' })
  for (const [name, value] of Object.entries(filters)) if (value) query.append(name, value)
  return call(`/leads?${query}`)
}
