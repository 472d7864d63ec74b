/**
 * A client of the Mini CRM API written only against the types that openapi-typescript generates
 * from the served /openapi.json (into ./generated, at test time). `tsc -p tests/client` checks it
 * against them, so a path, a body or a response shape that drifts from this usage fails to compile.
 */
import createClient from 'openapi-fetch'
import type { components, paths } from './generated/api.js'

type LeadStatus = components['schemas']['LeadStatus']

export interface Summary {
  clientId: number
  phone: string
  leadId: number
  leadClientId: number
  status: LeadStatus
  statsTotal: number
  statsContacted: number
}

/** The body of a successful step, or an error naming the step, the HTTP status and the problem. */
function expectStatus<T>(step: string, expected: number, result: { data?: T; error?: unknown; response: Response }) {
  const { status } = result.response
  if (result.error !== undefined || status !== expected || result.data === undefined || result.data === null) {
    const problem = result.error === undefined ? '' : ` ${JSON.stringify(result.error)}`
    throw new Error(`${step}: expected HTTP ${expected}, got ${status}${problem}`)
  }
  return result.data
}

/** `fetch` may be one that checks each response against the document as well. */
export async function runScenario(
  baseUrl: string,
  fetch: typeof globalThis.fetch = globalThis.fetch,
): Promise<Summary> {
  const client = createClient<paths>({ baseUrl, fetch })

  const token = expectStatus(
    'POST /auth/login',
    200,
    await client.POST('/auth/login', { body: { username: 'admin', password: 'admin123' } }),
  )
  if (token.token_type !== 'bearer' || token.access_token === '') {
    throw new Error(`POST /auth/login: unexpected token ${JSON.stringify(token)}`)
  }
  client.use({
    onRequest({ request }) {
      request.headers.set('authorization', `Bearer ${token.access_token}`)
      return request
    },
  })

  const created = expectStatus(
    'POST /clients',
    201,
    await client.POST('/clients', {
      body: { client_type: 'natural', contact_name: 'Juan Pérez', phone: '+584123456789', email: 'juan@example.com' },
    }),
  )

  const lead = expectStatus(
    'POST /leads',
    201,
    await client.POST('/leads', { body: { client_id: created.id, channel: 'web' } }),
  )
  if (lead.status !== 'new') throw new Error(`POST /leads: a new lead has status ${lead.status}, not new`)

  const changed = expectStatus(
    'PATCH /leads/{id}/status',
    200,
    await client.PATCH('/leads/{id}/status', { params: { path: { id: lead.id } }, body: { status: 'contacted' } }),
  )

  const stats = expectStatus('GET /leads/stats', 200, await client.GET('/leads/stats'))

  return {
    clientId: created.id,
    phone: created.phone,
    leadId: changed.id,
    leadClientId: changed.client.id,
    status: changed.status,
    statsTotal: stats.total,
    statsContacted: stats.by_status.contacted,
  }
}
