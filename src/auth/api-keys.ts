import { createHash, randomBytes } from 'node:crypto'

/** Every API key starts with this: it tells a key from a JWT, and a secret scanner can find leaked ones. */
const API_KEY_PREFIX = 'crm_'

const KEY_BYTES = 32
// crm_ and the first 6 characters of the random part: enough to tell keys apart, far too few to guess one.
const SHOWN_PREFIX_LENGTH = API_KEY_PREFIX.length + 6

export function isApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX)
}

/**
 * The stored form of a key. A plain SHA-256 is enough here, unlike for passwords: the key holds 256
 * random bits, so no dictionary or brute force can invert it, and a fast hash lets every request
 * find its key by an indexed equality lookup.
 */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest()
}

/** A new key (crm_ + 32 random bytes, base64url), the hash to store, and the prefix lists show. */
export function generateApiKey(): { key: string; hash: Buffer; prefix: string } {
  const key = `${API_KEY_PREFIX}${randomBytes(KEY_BYTES).toString('base64url')}`
  return { key, hash: hashApiKey(key), prefix: key.slice(0, SHOWN_PREFIX_LENGTH) }
}
