import { randomBytes } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import argon2 from 'argon2'

// OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
const HASH_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

export const PASSWORD_MIN_LENGTH = 8
export const PASSWORD_MAX_LENGTH = 128

/** A password as a user chooses it; it is written, never read back. */
export const Password = Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH, writeOnly: true })

/** A password already hashed with argon2id: services never see plain passwords. */
export type PasswordHash = string & { readonly __brand: 'PasswordHash' }

export async function hashPassword(password: string): Promise<PasswordHash> {
  return (await argon2.hash(password, HASH_OPTIONS)) as PasswordHash
}

let unknownUserHash: Promise<PasswordHash> | undefined

/** Makes the unknown-user hash ahead of the first login, so that login costs the same as every other. */
export async function prepareUnknownUserHash(): Promise<void> {
  unknownUserHash ??= hashPassword(randomBytes(32).toString('base64url'))
  await unknownUserHash
}

/**
 * Checks a password against a stored hash. For an unknown user it checks against a hash of a
 * random password, so that every failure costs the same time.
 */
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
  if (hash === undefined) {
    await prepareUnknownUserHash()
    await argon2.verify(await (unknownUserHash as Promise<PasswordHash>), password)
    return false
  }
  try {
    return await argon2.verify(hash, password)
  } catch {
    return false
  }
}
