import assert from 'node:assert/strict'
import type { TestContext } from './context.js'

let phoneCounter = 0

/**
 * A valid Venezuelan mobile number that no other call in this process has given (each test file
 * has a database of its own), from a range no test writes by hand.
 */
export function uniquePhone(): string {
  phoneCounter += 1
  return `+58424${String(8_000_000 + phoneCounter)}`
}

type Created = { id: number } & Record<string, unknown>

/** POST /clients as `token` (the admin's by default), asserting 201: a natural client with a fresh phone unless `fields` say otherwise. */
export async function createClient(
  ctx: TestContext,
  fields: Record<string, unknown> = {},
  token = ctx.adminToken,
): Promise<Created & { phone: string }> {
  const response = await ctx.as(token, 'POST', '/clients', {
    contact_name: 'Cliente de prueba',
    phone: uniquePhone(),
    ...fields,
  })
  assert.equal(response.statusCode, 201, response.body)
  return response.json()
}

/** POST /leads as `token` (the admin's by default), asserting 201; on the web channel unless `fields` say otherwise. */
export async function createLead<T extends Created = Created>(
  ctx: TestContext,
  fields: { client_id: number } & Record<string, unknown>,
  token = ctx.adminToken,
): Promise<T> {
  const response = await ctx.as(token, 'POST', '/leads', { channel: 'web', ...fields })
  assert.equal(response.statusCode, 201, response.body)
  return response.json()
}
