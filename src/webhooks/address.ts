import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { DomainError } from '../errors/domain.js'

export class WebhookUrlNotAllowedError extends DomainError {
  constructor(detail: string) {
    super(400, 'webhook_url_not_allowed', detail)
  }
}

export interface CheckedTarget {
  url: URL
  /** The address that was checked: the connection goes to it, never to a second lookup's answer. */
  address: string
  family: 4 | 6
}

/**
 * Refuses a webhook URL that is not https (http too when private networks are allowed) or whose
 * host is, or resolves to, anything but a public unicast address: loopback, private, link-local,
 * unique-local, CGNAT, multicast, reserved. Every address a name resolves to must pass, so that a
 * name with one public and one private answer cannot pick the private one later.
 */
export async function checkWebhookTarget(rawUrl: string, allowPrivateNetworks: boolean): Promise<CheckedTarget> {
  let url: URL
  try {
    url = new URL(rawUrl)
  } catch {
    throw new WebhookUrlNotAllowedError('The URL cannot be parsed')
  }
  const schemes = allowPrivateNetworks ? ['https:', 'http:'] : ['https:']
  if (!schemes.includes(url.protocol)) {
    throw new WebhookUrlNotAllowedError(
      allowPrivateNetworks ? 'Only http: and https: URLs are allowed' : 'Only https: URLs are allowed',
    )
  }
  if (url.username || url.password) throw new WebhookUrlNotAllowedError('Credentials in the URL are not allowed')
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  let answers: Array<{ address: string; family: number }>
  if (isIP(host)) {
    answers = [{ address: host, family: isIP(host) }]
  } else {
    try {
      answers = await lookup(host, { all: true, verbatim: true })
    } catch {
      throw new WebhookUrlNotAllowedError(`The host ${host} does not resolve`)
    }
  }
  const first = answers[0]
  if (!first) throw new WebhookUrlNotAllowedError(`The host ${host} does not resolve`)
  if (!allowPrivateNetworks) {
    for (const answer of answers) {
      const range = ipaddr.process(answer.address).range()
      if (range !== 'unicast') {
        throw new WebhookUrlNotAllowedError(
          `The host ${host} is or resolves to a ${range} address (${answer.address}); only public addresses are allowed`,
        )
      }
    }
  }
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 }
}
