import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface GraphRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  // biome-ignore lint/suspicious/noExplicitAny: the message bodies of several types
  json: any
}

export interface GraphError {
  /** The HTTP status Meta answers with (400 for most refusals). */
  status: number
  code: number
  message: string
  details?: string
}

export interface FakeGraphApi {
  /** The WHATSAPP_GRAPH_URL to configure: this server and a version segment, as Meta's URLs have. */
  url: string
  accessToken: string
  phoneNumberId: string
  received: GraphRequest[]
  /** The message ids answered, in order. */
  sentIds: string[]
  /** Set to refuse the next sends as the Graph API does; cleared by setting undefined. */
  refuse: GraphError | undefined
  /** Set to answer the next sends with this status and raw body instead (a proxy's error page, a broken answer). */
  rawAnswer: { status: number; body: string } | undefined
  close(): Promise<void>
}

/**
 * A real HTTP server on loopback answering `POST /{version}/{phone_number_id}/messages` as Meta's
 * Cloud API reference documents it: a bearer token or a 401 OAuthException (code 190); a body with
 * `messaging_product: "whatsapp"`, `to` and a `type` whose object is present, or a 400 (code 100);
 * on success `{messaging_product, contacts: [{input, wa_id}], messages: [{id: "wamid.…"}]}`.
 */
export async function startFakeGraphApi(): Promise<FakeGraphApi> {
  const api: FakeGraphApi = {
    url: '',
    accessToken: `EAAG${randomBytes(24).toString('hex')}`,
    phoneNumberId: '106540352242922',
    received: [],
    sentIds: [],
    refuse: undefined,
    rawAnswer: undefined,
    close: async () => {},
  }
  const graphError = (error: GraphError) => ({
    error: {
      message: error.message,
      type: 'OAuthException',
      code: error.code,
      ...(error.details && { error_data: { messaging_product: 'whatsapp', details: error.details } }),
      fbtrace_id: `A${randomBytes(8).toString('hex')}`,
    },
  })
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      let json: unknown
      try {
        json = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        json = undefined
      }
      api.received.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, json })
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' })
        response.end(JSON.stringify(body))
      }
      const body = json as Record<string, unknown> | undefined
      if (request.method !== 'POST' || request.url !== `/v21.0/${api.phoneNumberId}/messages`) {
        return answer(400, graphError({ status: 400, code: 100, message: 'Unsupported post request.' }))
      }
      if (request.headers.authorization !== `Bearer ${api.accessToken}`) {
        return answer(401, graphError({ status: 401, code: 190, message: 'Invalid OAuth access token.' }))
      }
      const type = typeof body?.type === 'string' ? body.type : ''
      if (body?.messaging_product !== 'whatsapp' || typeof body.to !== 'string' || !body[type]) {
        return answer(400, graphError({ status: 400, code: 100, message: '(#100) Invalid parameter' }))
      }
      if (api.refuse) return answer(api.refuse.status, graphError(api.refuse))
      if (api.rawAnswer) {
        response.writeHead(api.rawAnswer.status, { 'content-type': 'text/html' })
        return response.end(api.rawAnswer.body)
      }
      const id = `wamid.${randomBytes(24).toString('base64')}`
      api.sentIds.push(id)
      return answer(200, {
        messaging_product: 'whatsapp',
        contacts: [{ input: body.to, wa_id: body.to.replace(/^\+/, '') }],
        messages: [{ id, ...(type === 'template' && { message_status: 'accepted' }) }],
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v21.0`
  api.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return api
}
