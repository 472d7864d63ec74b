import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { checkWebhookTarget, WebhookUrlNotAllowedError } from './address.js'

const MAX_RESPONSE_BYTES = 64 * 1024

export interface DeliveryOutcome {
  ok: boolean
  /** The receiver's status code, or null when no answer came. */
  status: number | null
  error: string | null
  /** The receiver answered 410 Gone: it wants no more. */
  gone: boolean
  durationMs: number
}

export interface SignedMessage {
  /** The event's public id: webhook-id, the same on every retry. */
  id: string
  body: string
}

/** The Standard Webhooks headers of a message, signed with the webhook's whsec_ secret. */
export function signedHeaders(secret: string, message: SignedMessage, at = new Date()): Record<string, string> {
  // Standard Webhooks counts whole seconds: sign the same second the header states.
  const timestamp = new Date(Math.floor(at.getTime() / 1000) * 1000)
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(timestamp.getTime() / 1000),
    'webhook-signature': new Webhook(secret).sign(message.id, timestamp, message.body),
  }
}

/**
 * POSTs a signed message to the webhook's URL. The host is resolved and checked again here (DNS
 * may have changed since the URL was saved) and the connection goes to the checked address.
 * Redirects are not followed: a 3xx is a failure.
 */
export async function deliver(
  target: { url: string; secret: string },
  message: SignedMessage,
  options: { allowPrivateNetworks: boolean; timeoutMs: number },
): Promise<DeliveryOutcome> {
  const started = performance.now()
  const outcome = (fields: Omit<DeliveryOutcome, 'durationMs' | 'gone'>): DeliveryOutcome => ({
    ...fields,
    gone: fields.status === 410,
    durationMs: Math.round(performance.now() - started),
  })
  let checked: Awaited<ReturnType<typeof checkWebhookTarget>>
  try {
    checked = await checkWebhookTarget(target.url, options.allowPrivateNetworks)
  } catch (error) {
    if (error instanceof WebhookUrlNotAllowedError) return outcome({ ok: false, status: null, error: error.message })
    throw error
  }
  const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
    if ((lookupOptions as { all?: boolean }).all) {
      ;(callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [
        { address: checked.address, family: checked.family },
      ])
    } else {
      callback(null, checked.address, checked.family)
    }
  }
  const client = checked.url.protocol === 'https:' ? https : http
  const headers = {
    ...signedHeaders(target.secret, message),
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(message.body)),
    'user-agent': 'mini-crm-webhooks/1',
  }
  return new Promise<DeliveryOutcome>((resolve) => {
    let settled = false
    const settle = (result: DeliveryOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(result)
    }
    const request = client.request(
      checked.url,
      { method: 'POST', headers, lookup: pinned, agent: false },
      (response) => {
        const status = response.statusCode ?? 0
        let received = 0
        response.on('data', (chunk: Buffer) => {
          received += chunk.length
          // The answer's body is not used: read a little, then stop listening to it.
          if (received > MAX_RESPONSE_BYTES) response.destroy()
        })
        const done = () => {
          const ok = status >= 200 && status < 300
          const error = ok
            ? null
            : status >= 300 && status < 400
              ? `answered ${status}: redirects are not followed`
              : `answered ${status}`
          settle(outcome({ ok, status, error }))
        }
        response.on('end', done)
        response.on('close', done)
        response.on('error', done)
      },
    )
    const timer = setTimeout(() => {
      request.destroy()
      settle(outcome({ ok: false, status: null, error: `no answer within ${options.timeoutMs / 1000} s` }))
    }, options.timeoutMs)
    request.on('error', (error) => settle(outcome({ ok: false, status: null, error: error.message.slice(0, 300) })))
    request.end(message.body)
  })
}
