import { createHmac, timingSafeEqual } from 'node:crypto'

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i

/**
 * Whether `header` (X-Hub-Signature-256: `sha256=<hex>`) is the HMAC-SHA256 of the body's bytes
 * exactly as they arrived, keyed with the app secret. Meta writes non-ASCII as \uXXXX escapes:
 * parsed and re-serialised JSON would not be the bytes it signed.
 */
export function hasValidSignature(rawBody: Buffer, header: string | string[] | undefined, appSecret: string): boolean {
  if (typeof header !== 'string') return false
  const match = header.trim().match(SIGNATURE)
  if (!match?.[1]) return false
  const expected = createHmac('sha256', appSecret).update(rawBody).digest()
  return timingSafeEqual(expected, Buffer.from(match[1], 'hex'))
}

/** Constant-time comparison of two strings of any length (the verify token). */
export function sameSecret(given: string, expected: string): boolean {
  // Comparing digests keeps the time independent of where, or whether, the lengths differ.
  const digest = (value: string) => createHmac('sha256', 'whatsapp-verify-token').update(value).digest()
  return timingSafeEqual(digest(given), digest(expected))
}
