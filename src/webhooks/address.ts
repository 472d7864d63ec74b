import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { DomainError } from '../errors/domain.js'

export class WebhookUrlNotAllowedError extends DomainError {
  constructor(detail: string) {
    super(400, 'webhook_url_not_allowed', detail)
  }
}

// IPv4-compatible IPv6 (deprecated): an IPv4 address in IPv6 clothes, which ipaddr.js calls unicast.
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96')

/**
 * The ipaddr.js range of an address, an IPv4-mapped one (::ffff:a.b.c.d) read as its IPv4 address.
 * The text is first written in hex by the WHATWG parser: ipaddr.js reads `::a.b.c.d` as IPv4-mapped.
 * Every other IPv6 form that embeds an IPv4 address (NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo,
 * SIIT ::ffff:0:0:0/96) has a range of its own, so it is refused whatever it embeds.
 */
function rangeOf(address: string): string {
  // A zone (%eth0) is dropped: it says where a link-local address is, and its range refuses it anyway.
  const text = isIP(address) === 6 ? new URL(`http://[${address.replace(/%.*$/, '')}]`).hostname.slice(1, -1) : address
  const parsed = ipaddr.process(text)
  if (parsed.kind() === 'ipv6' && parsed.range() === 'unicast' && parsed.match(IPV4_COMPATIBLE)) {
    return 'IPv4-compatible'
  }
  return parsed.range()
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
 * unique-local, CGNAT, multicast, reserved, and the IPv6 forms that embed an IPv4 address. Every address a name resolves to must pass, so that a
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
      const range = rangeOf(answer.address)
      if (range !== 'unicast') {
        throw new WebhookUrlNotAllowedError(
          `The host ${host} is or resolves to ${answer.address} (range: ${range}); only public addresses are allowed`,
        )
      }
    }
  }
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 }
}
