import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import { WEBHOOK_BODY_LIMIT } from '../src/whatsapp/routes.js'
import { startTestContext, type TestContext } from './helpers/context.js'
import { uniquePhone } from './helpers/fixtures.js'
import { type FakeGraphApi, startFakeGraphApi } from './helpers/graph-api.js'

/**
 * Hostile input, on every operation the OpenAPI document lists: generated requests (fast-check,
 * fixed seeds, bounded runs) with valid and broken bodies, query strings and path parameters, as an
 * admin and as a sales user. Whatever comes in, the answer is never a 5xx, every error is
 * problem+json without a stack trace or SQL, and the database holds exactly what the 2xx answers
 * said, each record with its one audit row.
 */

const SEED = 20_261_126
const ADMIN_RUNS = 24
const SALES_RUNS = 8
const BODY_LIMIT = 65_536
const MISSING_ID = 2_000_000_000
const WHATSAPP_APP_SECRET = 'hostile-app-secret'

type Table = 'users' | 'clients' | 'leads' | 'webhooks' | 'web_forms'
const TABLES: Table[] = ['users', 'clients', 'leads', 'webhooks', 'web_forms']
/** The table behind each collection of the API's paths. */
const TABLE_OF_COLLECTION: Record<string, Table> = {
  users: 'users',
  clients: 'clients',
  leads: 'leads',
  webhooks: 'webhooks',
  forms: 'web_forms',
}
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'
type Actor = 'admin' | 'sales' | 'anonymous'

interface Schema {
  $ref?: string
  type?: string | string[]
  enum?: unknown[]
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  maxItems?: number
  pattern?: string
  format?: string
}

interface Parameter {
  in: 'query' | 'path'
  name: string
  required?: boolean
  schema: Schema
}

interface Operation {
  method: Method
  path: string
  operationId: string
  parameters: Parameter[]
  body?: Schema
  bodyTypes: string[]
}

/** JSON text (in a body) or an already-encoded part of a URL, sent exactly as written. */
class Raw {
  constructor(readonly text: string) {}
}

/** The id of a record that exists when the request is sent, chosen by `pick`. */
class Live {
  constructor(
    readonly table: Table,
    readonly pick: number,
  ) {}
}

type Entries = Array<[string, unknown]>

interface Probe {
  actor: 'admin' | 'sales'
  path: unknown[]
  query: Entries
  body?: { entries: Entries } | { raw: string }
  contentType: string
}

// ---------------------------------------------------------------------------------------------
// Hostile material
// ---------------------------------------------------------------------------------------------

const DEEP_ARRAY = `${'['.repeat(10_000)}${']'.repeat(10_000)}`
const DEEP_OBJECT = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`
const HUGE = 'x'.repeat(100_000)

const HOSTILE_TEXT = [
  '',
  ' ',
  '\t\n',
  '\u0000',
  'a\u0000b',
  "'; drop table clients; --",
  "1' OR '1'='1",
  '" OR ""="',
  '{"$gt": ""}',
  '__proto__',
  'constructor.prototype',
  '😀👩‍👩‍👧‍👦🇻🇪',
  'مرحبا بالعالم',
  'שלום',
  '\u202Eevil\u202C',
  'e\u0301\u0302\u0303\u0304\u0305',
  '\ud800',
  '\uffff',
  '\ufeff',
  '%00',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  'NaN',
  'Infinity',
  '-Infinity',
  '0',
  '-1',
  '1.5',
  '2147483648',
  '9999999999',
  '9007199254740992',
  '9223372036854775808',
  '99999999999999999999',
  'null',
  'true',
  'y'.repeat(201),
  'z'.repeat(5001),
  'é'.repeat(20_000),
  HUGE,
]

const HOSTILE_JSON = [
  '0',
  '-1',
  '1.5',
  '-0',
  '2147483648',
  '-2147483649',
  '9007199254740992',
  '9223372036854775808',
  '1e308',
  '1e999',
  'NaN',
  'Infinity',
  '-Infinity',
  'true',
  'false',
  'null',
  '[]',
  '[1,2]',
  '["a"]',
  '[null]',
  '{}',
  '{"$gt":""}',
  '{"$ne":null}',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  DEEP_ARRAY,
  DEEP_OBJECT,
].map((text) => new Raw(text))

const WHOLE_BODIES = [
  DEEP_ARRAY,
  DEEP_OBJECT,
  `[${'{},'.repeat(5000)}{}]`,
  '[]',
  'null',
  '"text"',
  '1',
  'true',
  '{',
  '{"a":1,}',
  "{'a':1}",
  'NaN',
  '{"x": NaN}',
  '{"x": Infinity}',
  '\u0000',
  '{"a":"\u0000"}',
  '',
  '   ',
  '\ufeff{}',
  JSON.stringify({ big: HUGE }),
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '<client><name>x</name></client>',
]

const EXTRA_KEYS = [
  'extra',
  '__proto__',
  'constructor',
  'prototype',
  '$gt',
  'id',
  'created_by',
  'password_hash',
  '',
  'a\u0000b',
]

const HOSTILE_ID_TEXT = [
  '0',
  '-1',
  '1.5',
  '2147483648',
  '9007199254740992',
  '9223372036854775808',
  '99999999999999999999',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e3',
  'abc',
  "1'; drop table users; --",
  '{"$gt":""}',
  '[1]',
  '🙂',
  '\u0000',
  '3000\u0000',
  'x'.repeat(300),
]
const HOSTILE_RAW_SEGMENTS = ['%', '%%', '%00', '%E0%A4%A', '%2F', '%2e%2e', '%C0%AE']

const HOSTILE_DATE_TEXT = [
  '2026-02-30',
  '2026-13-01',
  '0000-00-00',
  '2026-11-26T25:00:00Z',
  '2026-11-26T10:00:00+99:99',
  '2026-11-26 10:00',
  '26/11/2026',
  'yesterday',
  '2026-11-26T10:00:00.1234567Z',
]
const HOSTILE_RAW_QUERY = ['%', '%00', '%E0%A4%A', '', '[]', 'a&b', '%26', '%3D', '1;2']

const UNKNOWN_PARAMS = ['foo', '__proto__', 'constructor', '__proto__[admin]', 'q[$gt]', 'limit[]', 'LIMIT', 'id']

const UNICODE_SAMPLES = [
  'José Pérez 😀',
  'مرحبا بالعالم',
  'שלום עולם',
  'e\u0301\u0301\u0301 combinado',
  'Z͑ͫ̓ͪ̂ͫ̽͏̴̙̤̞͉͚̯̞̠͍algo',
  '\u202Eevil\u202C',
  '👩‍👩‍👧‍👦🇻🇪',
  "O'Brien'; drop table clients; --",
  '{"$gt": ""}',
  '__proto__',
  'constructor.prototype',
  '%00 is not a NUL',
]

/** What an answer must never show: a stack trace, source paths, or PostgreSQL's words. */
const LEAK =
  /\n\s+at |\bat [\w.<>]+ \(|node_modules|\/src\/|\.ts:\d+|syntax error at or near|violates \w+ constraint|duplicate key value|invalid input syntax|invalid byte sequence|out of range for type|relation "|SQLSTATE|\bselect\b[\s\S]{0,200}\bfrom\b[\s\S]{0,200}\bwhere\b/i

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/** Percent-encodes every byte but the unreserved ones; lone surrogates become U+FFFD, as UTF-8 must. */
function percentEncode(text: string): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte)
    out += byte < 128 && /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

function clip(text: string, length = 160): string {
  const escaped = JSON.stringify(text)
  return escaped.length > length ? `${escaped.slice(0, length)}…(${text.length} chars)` : escaped
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

describe('hostile input', () => {
  let ctx: TestContext
  let graph: FakeGraphApi
  const operations: Operation[] = []
  let components: Record<string, Schema> = {}
  const tokens: Record<Actor, string | undefined> = { admin: undefined, sales: undefined, anonymous: undefined }
  const protectedUsers = new Set<number>()
  let salesId = 0
  let counter = 0

  // What the 2xx answers said: records alive now, and every record ever created or deleted.
  const alive = {
    users: new Set<number>(),
    clients: new Set<number>(),
    leads: new Map<number, number>(),
    webhooks: new Set<number>(),
    web_forms: new Set<number>(),
  }
  const created: Record<Table, Set<number>> = {
    users: new Set(),
    clients: new Set(),
    leads: new Set(),
    webhooks: new Set(),
    web_forms: new Set(),
  }
  const deleted: Record<Table, Set<number>> = {
    users: new Set(),
    clients: new Set(),
    leads: new Set(),
    webhooks: new Set(),
    web_forms: new Set(),
  }

  const aliveIds = (table: Table): number[] =>
    table === 'leads' ? [...alive.leads.keys()] : [...alive[table]].filter((id) => !protectedUsers.has(id))

  const resolveId = (live: Live): number => {
    const pool = aliveIds(live.table)
    return pool.length > 0 ? (pool[live.pick % pool.length] as number) : MISSING_ID
  }

  const jsonText = (value: unknown): string => {
    if (value instanceof Raw) return value.text
    if (value instanceof Live) return String(resolveId(value))
    if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`
    if (value !== null && typeof value === 'object') {
      return `{${Object.entries(value)
        .map(([key, inner]) => `${JSON.stringify(key)}:${jsonText(inner)}`)
        .join(',')}}`
    }
    return JSON.stringify(value) ?? 'null'
  }
  const entriesText = (entries: Entries) =>
    `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${jsonText(value)}`).join(',')}}`
  const urlPart = (value: unknown): string => {
    if (value instanceof Raw) return value.text
    if (value instanceof Live) return String(resolveId(value))
    return percentEncode(typeof value === 'string' ? value : jsonText(value))
  }
  const formText = (value: unknown): string =>
    value instanceof Live ? String(resolveId(value)) : typeof value === 'string' ? value : jsonText(value)

  const tableOf = (path: string): Table => {
    // A trashed row's purge takes a live lead's id: a 404, since it is not in the trash.
    const table = path.startsWith('/trash/') ? 'leads' : TABLE_OF_COLLECTION[path.split('/')[1] ?? '']
    if (!table) throw new Error(`no table for ${path}`)
    return table
  }

  /** Records what a 2xx answer says happened to the users, clients and leads (live ones: not in the trash). */
  function tally(
    op: { method: string; path: string },
    idText: string | undefined,
    response: LightMyRequestResponse,
    payload: unknown,
  ) {
    if (response.statusCode < 200 || response.statusCode >= 300) return
    const pathId = idText === undefined ? Number.NaN : Number(idText.trim())
    const table = TABLE_OF_COLLECTION[op.path.slice(1)]
    if (op.method === 'POST' && op.path === '/clients/{id}/merge') {
      const merge = response.json() as { dry_run: boolean; from_id: number; lead_ids: number[] }
      if (merge.dry_run) return
      alive.clients.delete(merge.from_id)
      for (const leadId of merge.lead_ids) alive.leads.set(leadId, pathId)
    } else if (op.method === 'POST' && op.path === '/clients/{id}/restore') {
      const client = response.json() as { id: number; leads: Array<{ id: number }> }
      alive.clients.add(client.id)
      for (const lead of client.leads) alive.leads.set(lead.id, client.id)
    } else if (op.method === 'POST' && op.path === '/leads/{id}/restore') {
      const lead = response.json() as { id: number; client_id: number }
      alive.leads.set(lead.id, lead.client_id)
    } else if (op.method === 'POST' && op.path === '/leads/bulk') {
      let action: unknown
      try {
        action = (JSON.parse(String(payload)) as { action?: unknown }).action
      } catch {
        return
      }
      if (action !== 'delete') return
      for (const result of (response.json() as { results: Array<{ id: number; status: number }> }).results) {
        if (result.status !== 200) continue
        alive.leads.delete(result.id)
        deleted.leads.add(result.id)
      }
    } else if (op.method === 'POST' && table) {
      const record = response.json() as { id: number; client_id?: number }
      created[table].add(record.id)
      if (table === 'leads') alive.leads.set(record.id, record.client_id as number)
      else alive[table as Exclude<Table, 'leads'>].add(record.id)
    } else if (op.method === 'PATCH' && op.path === '/leads/{id}') {
      const record = response.json() as { id: number; client_id: number }
      alive.leads.set(record.id, record.client_id)
    } else if (
      op.method === 'DELETE' &&
      ['/users/{id}', '/leads/{id}', '/webhooks/{id}', '/forms/{id}'].includes(op.path)
    ) {
      const recordTable = tableOf(op.path)
      deleted[recordTable].add(pathId)
      if (recordTable === 'leads') alive.leads.delete(pathId)
      else alive[recordTable as Exclude<Table, 'leads' | 'clients'>].delete(pathId)
    } else if (op.method === 'DELETE' && op.path === '/clients/{id}') {
      deleted.clients.add(pathId)
      alive.clients.delete(pathId)
      for (const [leadId, clientId] of alive.leads) {
        if (clientId === pathId) {
          alive.leads.delete(leadId)
          deleted.leads.add(leadId)
        }
      }
    }
  }

  interface Sent {
    actor: Actor
    op: { method: Method; path: string }
    url: string
    idText?: string
    payload?: string
    contentType?: string
  }

  async function send(request: Sent): Promise<LightMyRequestResponse> {
    const token = tokens[request.actor]
    const options: InjectOptions = {
      method: request.op.method,
      url: request.url,
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        ...(request.contentType && { 'content-type': request.contentType }),
      },
      // Login failures are throttled per address: spread them over loopback addresses.
      remoteAddress: `127.0.${(counter >> 8) & 255}.${counter & 255}`,
      ...(request.payload !== undefined && { payload: request.payload }),
    }
    // Meta signs what it posts: a signed body reaches the parser and the validation under attack.
    if (request.op.path === '/integrations/whatsapp/webhook' && request.payload !== undefined) {
      const signature = createHmac('sha256', WHATSAPP_APP_SECRET).update(request.payload).digest('hex')
      options.headers = { ...options.headers, 'x-hub-signature-256': `sha256=${signature}` }
    }
    counter += 1
    const response = await ctx.inject(options)
    tally(request.op, request.idText, response, request.payload)
    return response
  }

  /** Everything wrong with an answer, or undefined. */
  function complaint(response: LightMyRequestResponse): string | undefined {
    const status = response.statusCode
    if (status >= 500) return `status ${status}`
    if (status < 400) return undefined
    if (LEAK.test(response.body)) return 'leaks a stack trace or SQL'
    const contentType = String(response.headers['content-type'] ?? '')
    if (!contentType.startsWith('application/problem+json')) return `content-type ${contentType || 'missing'}`
    let problem: { status?: unknown; code?: unknown }
    try {
      problem = JSON.parse(response.body)
    } catch {
      return 'body is not JSON'
    }
    if (problem.status !== status) return `problem status ${String(problem.status)}`
    if (typeof problem.code !== 'string') return 'problem without a string code'
    return undefined
  }

  function describeExchange(request: Sent, response: LightMyRequestResponse): string {
    return `${request.actor} ${request.op.method} ${clip(request.url)} [${request.contentType ?? '-'}] ${
      request.payload === undefined ? '' : clip(request.payload)
    } → ${response.statusCode} ${clip(response.body, 240)}`
  }

  function assertAnswer(request: Sent, response: LightMyRequestResponse): void {
    const wrong = complaint(response)
    assert.equal(wrong, undefined, `${wrong}: ${describeExchange(request, response)}`)
  }

  // -------------------------------------------------------------------------------------------
  // Schema-driven generators
  // -------------------------------------------------------------------------------------------

  const resolve = (schema: Schema): Schema =>
    schema.$ref ? resolve(components[schema.$ref.replace('#/components/schemas/', '')] as Schema) : schema

  const phoneArb = fc
    .tuple(
      fc.constantFrom('412', '414', '416', '424', '426'),
      fc.integer({ min: 0, max: 9_999_999 }),
      fc.integer({ min: 0, max: 3 }),
    )
    .map(([prefix, number, form]) => {
      const digits = String(number).padStart(7, '0')
      if (form === 0) return `+58${prefix}${digits}`
      if (form === 1) return `0${prefix}-${digits.slice(0, 3)} ${digits.slice(3)}`
      if (form === 2) return `+58 ${prefix} ${digits}`
      return `0058${prefix}${digits}`
    })
  const usernameArb = fc.integer({ min: 0, max: 2 ** 40 }).map((n) => `fz.${n.toString(36)}`)
  const passwordArb = fc.string({ unit: 'grapheme-ascii', minLength: 8, maxLength: 24 })
  const emailArb = fc.integer({ min: 0, max: 2 ** 40 }).map((n) => `fz${n.toString(36)}@example.com`)
  const textArb = (min: number, max: number) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme', minLength: min, maxLength: max }) },
      { weight: 2, arbitrary: fc.constantFrom(...UNICODE_SAMPLES).filter((text) => text.length <= max) },
    )
  const dayArb = fc
    .tuple(fc.integer({ min: 2020, max: 2030 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }))
    .map(([y, m, d]) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`)
  const dateOrTimestampArb = fc
    .tuple(dayArb, fc.constantFrom('', 'T10:00:00Z', 'T23:59:59.999Z', 'T08:30+02:00'))
    .map(([day, time]) => `${day}${time}`)
  const dateTimeArb = dayArb.map((day) => `${day}T12:00:00Z`)
  const liveArb = (table: Table) => fc.nat().map((pick) => new Live(table, pick))

  function validFor(input: Schema, name: string): fc.Arbitrary<unknown> {
    const schema = resolve(input)
    const types = Array.isArray(schema.type) ? schema.type : [schema.type]
    const base = ((): fc.Arbitrary<unknown> => {
      if (name === 'phone') return phoneArb
      if (name === 'username') return usernameArb
      if (name === 'password' || name === 'new_password') return passwordArb
      if (name === 'current_password') return fc.constantFrom('wrong-password', 'not-it-either')
      if (name === 'client_id') return liveArb('clients')
      if (name === 'assigned_to' && types.includes('integer')) return liveArb('users')
      if (name === 'user_id') return liveArb('users')
      if (name === 'record_id') return liveArb('leads')
      if (schema.enum) return fc.constantFrom(...schema.enum)
      if (types.includes('array') && schema.items) {
        return fc.array(validFor(schema.items, name), { minLength: 1, maxLength: Math.min(schema.maxItems ?? 3, 3) })
      }
      if (types.includes('object')) return objectArb(schema).map((entries) => Object.fromEntries(entries))
      if (types.includes('integer')) {
        return fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 1000, 1000) })
      }
      if (types.includes('boolean')) return fc.boolean()
      if (schema.format === 'email') return emailArb
      if (schema.format === 'date-time') return dateTimeArb
      if (schema.pattern?.startsWith('^\\d{4}')) return dateOrTimestampArb
      if (schema.pattern?.includes('me|none')) {
        return fc.oneof(fc.constantFrom('me', 'none'), liveArb('users'))
      }
      return textArb(Math.max(schema.minLength ?? 0, 1), Math.min(schema.maxLength ?? 40, 40))
    })()
    return types.includes('null')
      ? fc.oneof({ weight: 4, arbitrary: base }, { weight: 1, arbitrary: fc.constant(null) })
      : base
  }

  function objectArb(input: Schema): fc.Arbitrary<Entries> {
    const schema = resolve(input)
    const required = new Set(schema.required ?? [])
    const fields = Object.entries(schema.properties ?? {}).map(([name, property]) =>
      required.has(name)
        ? validFor(property, name).map((value): Entries => [[name, value]])
        : fc.option(
            validFor(property, name).map((value): Entries => [[name, value]]),
            { nil: [] as Entries, freq: 2 },
          ),
    )
    return fc.tuple(...fields).map((parts) => parts.flat())
  }

  const hostileTextArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_TEXT) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  )
  const hostileJsonArb = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_JSON) },
    { weight: 2, arbitrary: hostileTextArb },
  )
  const hostileQueryValueArb = fc.oneof(
    { weight: 4, arbitrary: hostileTextArb },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_DATE_TEXT) },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_RAW_QUERY).map((text) => new Raw(text)) },
  )

  type Mutation = (entries: Entries) => Entries
  function mutationArb(schema: Schema): fc.Arbitrary<Mutation> {
    const names = Object.keys(resolve(schema).properties ?? {})
    return fc.oneof(
      fc.nat().map(
        (n): Mutation =>
          (entries) =>
            entries.filter((_, index) => index !== n % entries.length),
      ),
      fc.tuple(fc.constantFrom(...names), hostileJsonArb).map(
        ([name, value]): Mutation =>
          (entries) => [...entries.filter(([key]) => key !== name), [name, value]],
      ),
      fc.tuple(fc.constantFrom(...EXTRA_KEYS), hostileJsonArb).map(
        ([name, value]): Mutation =>
          (entries) => [...entries, [name, value]],
      ),
      // A NUL byte inside an otherwise valid text: PostgreSQL refuses it in text and in jsonb.
      fc.tuple(fc.nat(), fc.nat()).map(
        ([which, at]): Mutation =>
          (entries) => {
            const texts = entries.filter((entry): entry is [string, string] => typeof entry[1] === 'string')
            const chosen = texts[which % Math.max(texts.length, 1)]
            if (!chosen) return entries
            const [name, text] = chosen
            const cut = at % (text.length + 1)
            return entries.map(([key, value]): [string, unknown] =>
              key === name ? [key, `${text.slice(0, cut)}\u0000${text.slice(cut)}`] : [key, value],
            )
          },
      ),
    )
  }

  const hostileSegmentArb = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_ID_TEXT) },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_RAW_SEGMENTS).map((text) => new Raw(text)) },
    {
      weight: 1,
      // Never a number: "1" or " 2" would aim at the admin or the sales user these requests act as.
      arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).filter((text) => Number.isNaN(Number(text))),
    },
  )
  const badContentTypeArb = fc.constantFrom(
    'text/plain',
    'application/xml',
    'application/x-www-form-urlencoded',
    'application/json; charset=utf-16',
    'multipart/form-data; boundary=x',
    'application/json; charset=utf-8',
  )

  /** A request the schema accepts: live ids, valid values, some optional fields and filters. */
  function validProbeArb(op: Operation, actor: Probe['actor']): fc.Arbitrary<Probe> {
    const pathParams = op.parameters.filter((parameter) => parameter.in === 'path')
    const query = op.parameters
      .filter((parameter) => parameter.in === 'query')
      .map((parameter) => {
        const value = validFor(parameter.schema, parameter.name).map(
          (value): Entries =>
            Array.isArray(value) ? value.map((item) => [parameter.name, item]) : [[parameter.name, value]],
        )
        return parameter.required ? value : fc.option(value, { nil: [] as Entries, freq: 2 })
      })
    return fc.record({
      actor: fc.constant(actor),
      path: fc.tuple(
        ...pathParams.map((parameter) =>
          parameter.name === 'id' &&
          !op.path.startsWith('/auth/api-keys/') &&
          !op.path.startsWith('/views/') &&
          !op.path.startsWith('/tasks/')
            ? liveArb(tableOf(op.path))
            : validFor(parameter.schema, parameter.name),
        ),
      ),
      query: fc.tuple(...query).map((parts) => parts.flat()),
      body: op.body ? objectArb(op.body).map((entries) => ({ entries })) : fc.constant(undefined),
      contentType: fc.constant('application/json'),
    })
  }

  type Fault = (probe: Probe) => Probe

  /** One thing wrong with a request: a path segment, a query parameter, the body or its type. */
  function faultArb(op: Operation): fc.Arbitrary<Fault> {
    const faults: Array<fc.WeightedArbitrary<Fault>> = []
    const pathCount = op.parameters.filter((parameter) => parameter.in === 'path').length
    if (pathCount > 0) {
      faults.push({
        weight: 2,
        arbitrary: fc.tuple(fc.nat(), hostileSegmentArb).map(
          ([which, value]): Fault =>
            (probe) => ({
              ...probe,
              path: probe.path.map((part, index) => (index === which % pathCount ? value : part)),
            }),
        ),
      })
    }
    const queryParams = op.parameters.filter((parameter) => parameter.in === 'query')
    const setQuery =
      (name: string, values: unknown[]): Fault =>
      (probe) => ({
        ...probe,
        query: [...probe.query.filter(([key]) => key !== name), ...values.map((v): [string, unknown] => [name, v])],
      })
    faults.push({
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.constantFrom(...queryParams.map((parameter) => parameter.name), ...UNKNOWN_PARAMS),
          fc.oneof(
            { weight: 3, arbitrary: hostileQueryValueArb.map((value) => [value]) },
            { weight: 1, arbitrary: fc.array(hostileQueryValueArb, { minLength: 2, maxLength: 7 }) },
          ),
        )
        .map(([name, values]) => setQuery(name, values)),
    })
    const textParams = queryParams.filter((parameter) => resolve(parameter.schema).type === 'string')
    if (textParams.length > 0) {
      // A NUL byte in an otherwise valid filter.
      faults.push({
        weight: 2,
        arbitrary: fc
          .constantFrom(...textParams)
          .chain((parameter) =>
            validFor(parameter.schema, parameter.name).map((value) =>
              setQuery(parameter.name, [`${String(value)}\u0000`]),
            ),
          ),
      })
    }
    if (op.body) {
      faults.push({
        weight: 5,
        arbitrary: mutationArb(op.body).map(
          (mutate): Fault =>
            (probe) => ({
              ...probe,
              body: probe.body && 'entries' in probe.body ? { entries: mutate(probe.body.entries) } : probe.body,
            }),
        ),
      })
      faults.push({
        weight: 1,
        arbitrary: fc.constantFrom(...WHOLE_BODIES).map(
          (raw): Fault =>
            (probe) => ({ ...probe, body: { raw } }),
        ),
      })
      faults.push({
        weight: 1,
        arbitrary: badContentTypeArb.map(
          (contentType): Fault =>
            (probe) => ({ ...probe, contentType }),
        ),
      })
    } else {
      faults.push({
        weight: 1,
        arbitrary: fc.constantFrom('{"x":1}', '{', DEEP_ARRAY).map(
          (raw): Fault =>
            (probe) => ({ ...probe, body: { raw } }),
        ),
      })
    }
    return fc.oneof(...faults)
  }

  /** A valid request with up to two faults: most reach the handler with exactly one thing wrong. */
  function probeArb(op: Operation, actor: Probe['actor']): fc.Arbitrary<Probe> {
    return fc
      .tuple(validProbeArb(op, actor), fc.array(faultArb(op), { minLength: 0, maxLength: 2 }))
      .map(([probe, faults]) => faults.reduce((acc, fault) => fault(acc), probe))
  }

  function toRequest(op: Operation, probe: Probe): Sent {
    let index = 0
    let idText: string | undefined
    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const part = urlPart(probe.path[index])
      index += 1
      if (name === 'id') idText = safeDecode(part)
      return part
    })
    const query = probe.query.map(([key, value]) => `${percentEncode(key)}=${urlPart(value)}`).join('&')
    const request: Sent = { actor: probe.actor, op, url: query ? `${path}?${query}` : path, idText }
    if (probe.body) {
      request.contentType = probe.contentType
      if ('raw' in probe.body) request.payload = probe.body.raw
      else if (probe.contentType === 'application/x-www-form-urlencoded') {
        request.payload = new URLSearchParams(
          probe.body.entries.map(([key, value]): [string, string] => [key, formText(value)]),
        ).toString()
      } else request.payload = entriesText(probe.body.entries)
    }
    return request
  }

  // -------------------------------------------------------------------------------------------
  // Valid requests, for the explicit checks
  // -------------------------------------------------------------------------------------------

  const unique = () => {
    counter += 1
    return `${Date.now().toString(36)}${counter}`
  }

  async function create(table: Table, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const op = { method: 'POST' as const, path: `/${table}` }
    const request: Sent = {
      actor: 'admin',
      op,
      url: op.path,
      payload: JSON.stringify(body),
      contentType: 'application/json',
    }
    const response = await send(request)
    assert.equal(response.statusCode, 201, describeExchange(request, response))
    return response.json()
  }
  const newUser = async (role = 'sales') =>
    (await create('users', { username: `v.${unique()}`, password: 'long-enough-pw', role })).id as number
  const newClient = async () => create('clients', { contact_name: 'Víctima Pérez', phone: uniquePhone() })
  const newLead = async (clientId?: number) =>
    (
      await create('leads', {
        client_id: clientId ?? ((await newClient()).id as number),
        channel: 'web',
        assigned_to: salesId,
      })
    ).id as number

  /**
   * A webhook written straight to its table with a loopback URL: every delivery and ping refuses it at
   * once, so no request waits on the network. It has no create row, as the consistency check expects.
   */
  const newWebhook = async () => {
    const row = await ctx.db
      .insertInto('webhooks')
      .values({ url: 'https://127.0.0.1:9/hook', events: ['client.merged'], secret: `whsec_${'A'.repeat(43)}=` })
      .returning('id')
      .executeTakeFirstOrThrow()
    alive.webhooks.add(row.id)
    return row.id
  }

  /** A web form written straight to its table, taking posts from anywhere (the requests send no Origin). */
  const newWebForm = async () => {
    const row = await ctx.db
      .insertInto('web_forms')
      .values({ name: 'Contacto', key: `key-${unique()}` })
      .returning(['id', 'key'])
      .executeTakeFirstOrThrow()
    alive.web_forms.add(row.id)
    return row
  }

  /** An API key of the admin's, to be revoked (its rows are outside the consistency check). */
  const newApiKey = async () => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/auth/api-keys', { name: 'victim', scopes: ['read'] })
    assert.equal(response.statusCode, 201, response.body)
    return response.json().id as number
  }

  /** A saved view of the admin's, shared so that every actor may read it; outside the consistency check. */
  const newView = async () => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/views', { name: 'Vista', resource: 'leads', shared: true })
    assert.equal(response.statusCode, 201, response.body)
    return response.json().id as number
  }

  /** A task of the admin's on a live lead; tasks are outside the consistency check. */
  const newTask = async () => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/tasks', {
      title: 'Llamar',
      due_at: '2026-12-09T14:00:00Z',
      lead_id: await newLead(),
    })
    assert.equal(response.statusCode, 201, response.body)
    return response.json().id as number
  }

  const VALID_BODIES: Record<string, () => Record<string, unknown>> = {
    receiveWhatsAppNotification: () => ({ object: 'whatsapp_business_account', entry: [] }),
    sendLeadWhatsApp: () => ({ template: { name: 'hello_world', language: 'es' } }),
    login: () => ({ username: 'nobody.here', password: 'not-the-password' }),
    changeOwnPassword: () => ({ current_password: 'not-the-password', new_password: 'another-long-password' }),
    createUser: () => {
      const name = `u.${unique()}`
      return {
        username: name,
        password: 'long-enough-pw',
        role: 'sales',
        email: `${name}@example.com`,
        full_name: 'Ana',
      }
    },
    updateUser: () => ({ full_name: 'Ana María', email: `e.${unique()}@example.com` }),
    createClient: () => ({
      client_type: 'juridical',
      contact_name: 'Ana Rojas',
      company_name: 'Inversiones Rojas C.A.',
      phone: uniquePhone(),
      email: `c.${unique()}@example.com`,
      address: 'Calle Principal 123',
    }),
    updateClient: () => ({ contact_name: 'Ana R.', company_name: 'Rojas', address: 'Avenida Bolívar 45' }),
    createLead: () => ({
      client_id: [...alive.clients][0],
      channel: 'web',
      status: 'new',
      admin_notes: 'Interesada',
      sales_notes: 'Llamar el lunes',
      assigned_to: salesId,
    }),
    updateLead: () => ({ channel: 'manual', admin_notes: 'Nota', sales_notes: 'Otra nota' }),
    changeLeadStatus: () => ({ status: 'contacted' }),
    assignLead: () => ({ assigned_to: salesId }),
    addLeadActivity: () => ({ type: 'call', body: 'Llamó', occurred_at: '2026-11-26T20:05:00Z' }),
    replaceAssignmentRules: () => ({ mode: 'round_robin', users: [salesId] }),
    replacePipelineSettings: () => ({ response_target: 'PT2H', holidays: ['2026-12-25'], time_zone: 'UTC' }),
    createTask: () => ({
      title: 'Enviar la cotización',
      notes: 'Con descuento',
      due_at: '2026-12-09T14:00:00-04:00',
      remind_at: '2026-12-09T13:00:00-04:00',
      client_id: [...alive.clients][0],
      assigned_to: salesId,
    }),
    updateTask: () => ({ title: 'Llamar otra vez', due_at: '2026-12-10T09:00:00Z', notes: null }),
    createWebForm: () => ({
      name: 'Contacto',
      allowed_origins: ['https://www.example.com'],
      redirect_url: 'https://www.example.com/gracias',
      assign_to: salesId,
    }),
    updateWebForm: () => ({ name: 'Contacto del sitio', redirect_url: null }),
    submitWebForm: () => ({
      name: 'Rosa Díaz',
      phone: uniquePhone(),
      email: `f.${unique()}@example.com`,
      company: 'Díaz C.A.',
      message: 'Quiero una cotización',
    }),
  }

  /** An answerable request for `op`, with fresh records where it changes or deletes one. */
  async function validRequest(
    op: Operation,
  ): Promise<{ path: string; query: string[]; idText?: string; body?: Record<string, unknown> }> {
    let idText: string | undefined
    let path = op.path
    if (path.includes('{id}')) {
      const fresh = op.method !== 'GET'
      let id: number
      const table = path.startsWith('/auth/api-keys/')
        ? 'api_keys'
        : path.startsWith('/views/')
          ? 'saved_views'
          : path.startsWith('/tasks/')
            ? 'tasks'
            : tableOf(path)
      if (table === 'api_keys') id = await newApiKey()
      else if (table === 'tasks') id = await newTask()
      else if (table === 'saved_views') id = await newView()
      else if (table === 'users') id = fresh ? await newUser() : (aliveIds('users')[0] ?? MISSING_ID)
      else if (table === 'clients')
        id = fresh ? ((await newClient()).id as number) : ([...alive.clients][0] ?? MISSING_ID)
      else if (table === 'webhooks') id = fresh ? await newWebhook() : ([...alive.webhooks][0] ?? MISSING_ID)
      else if (table === 'web_forms') id = fresh ? (await newWebForm()).id : ([...alive.web_forms][0] ?? MISSING_ID)
      else id = fresh ? await newLead() : ([...alive.leads.keys()][0] ?? MISSING_ID)
      idText = String(id)
      path = path.replace('{id}', idText)
    }
    path = path.replace('{type}', 'leads')
    // No delivery has this id: the answer is a 404 once the request passes validation.
    path = path.replace('{delivery_id}', String(MISSING_ID)).replace('{activity_id}', String(MISSING_ID))
    if (path.includes('{key}')) path = path.replace('{key}', (await newWebForm()).key)
    if (path.includes('{phone}')) path = path.replace('{phone}', percentEncode((await newClient()).phone as string))
    const make = VALID_BODIES[op.operationId]
    let body: Record<string, unknown> | undefined
    if (op.body) {
      body = make ? make() : Object.fromEntries(fc.sample(objectArb(op.body), { seed: SEED, numRuns: 1 })[0] as Entries)
    }
    // Required query parameters (the q of /clients/search) get a valid value.
    const query = op.parameters
      .filter((parameter) => parameter.in === 'query' && parameter.required)
      .map((parameter) => {
        const [value] = fc.sample(validFor(parameter.schema, parameter.name), { seed: SEED, numRuns: 1 })
        return `${parameter.name}=${urlPart(value)}`
      })
    return { path, query, idText, body }
  }

  const urlOf = (valid: { path: string; query: string[] }, ...extra: string[]) => {
    const query = [
      ...valid.query.filter((pair) => !extra.some((e) => e.split('=')[0] === pair.split('=')[0])),
      ...extra,
    ]
    return query.length > 0 ? `${valid.path}?${query.join('&')}` : valid.path
  }
  const bodyOps = () => operations.filter((op) => op.body)
  const bodyLimitOf = (op: Operation) => (op.path === '/integrations/whatsapp/webhook' ? WEBHOOK_BODY_LIMIT : 100_000)
  const actorFor = (op: Operation): Actor => (op.operationId === 'login' ? 'anonymous' : 'admin')

  // -------------------------------------------------------------------------------------------

  before(async () => {
    // WhatsApp configured, with Meta played by a local server, so that its routes are attacked too.
    graph = await startFakeGraphApi()
    ctx = await startTestContext({
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      WHATSAPP_VERIFY_TOKEN: 'hostile-verify-token',
      WHATSAPP_APP_SECRET: WHATSAPP_APP_SECRET,
      WHATSAPP_ACCESS_TOKEN: graph.accessToken,
      WHATSAPP_PHONE_NUMBER_ID: graph.phoneNumberId,
      WHATSAPP_GRAPH_URL: graph.url,
    })
    tokens.admin = ctx.adminToken

    const document = (await ctx.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { operationId: string; parameters?: Parameter[]; requestBody?: never }>>
      components: { schemas: Record<string, Schema> }
    }
    components = document.components.schemas
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const content = (operation.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)?.content
        operations.push({
          method: method.toUpperCase() as Method,
          path,
          operationId: operation.operationId,
          parameters: operation.parameters ?? [],
          // A file upload (multipart) has no JSON fields to attack.
          body: content && !content['multipart/form-data'] ? Object.values(content)[0]?.schema : undefined,
          bodyTypes: Object.keys(content ?? {}),
        })
      }
    }

    for (const table of TABLES) {
      const rows = await sql<{ id: number }>`select id from ${sql.table(table)}`.execute(ctx.db)
      for (const { id } of rows.rows) {
        created[table].add(id)
        if (table !== 'leads') alive[table].add(id)
      }
    }
    const admin = (await ctx.as(ctx.adminToken, 'GET', '/auth/me')).json() as { id: number }
    protectedUsers.add(admin.id)

    // The sales user the generated requests act as: never a target, so its token keeps working.
    const salesName = `sales.${unique()}`
    salesId = (await create('users', { username: salesName, password: 'sales-password', role: 'sales' })).id as number
    protectedUsers.add(salesId)
    tokens.sales = await ctx.login(salesName, 'sales-password')

    // Records for the generated requests to aim at.
    for (let i = 0; i < 3; i++) await newUser(i === 0 ? 'management' : 'sales')
    for (let i = 0; i < 6; i++) {
      const client = await newClient()
      if (i < 4) await newLead(client.id as number)
      if (i < 2) await newLead(client.id as number)
    }
  })
  after(async () => {
    await ctx?.close()
    await graph?.close()
  })

  it('serves an OpenAPI document with the operations to attack', () => {
    assert.ok(operations.length >= 25, `only ${operations.length} operations`)
    assert.ok(bodyOps().length >= 8)
  })

  // ------------------------------------------------------------------ NUL bytes (PostgreSQL refuses them)

  it('refuses a NUL byte in any stored or searched text field of a JSON body with 400 naming the field', async () => {
    // Passwords are only hashed, and the OAuth2 extras of /auth/login are ignored: those may pass.
    // The honeypot of a web form is never stored: whatever fills it, the post is dropped.
    const lenient = new Set([
      'password',
      'new_password',
      'current_password',
      'grant_type',
      'scope',
      'client_secret',
      'website',
    ])
    const failures: string[] = []
    for (const op of bodyOps()) {
      const properties = resolve(op.body as Schema).properties ?? {}
      for (const [name, property] of Object.entries(properties)) {
        const schema = resolve(property)
        const types = Array.isArray(schema.type) ? schema.type : [schema.type]
        if (!types.includes('string') || (op.operationId === 'login' && name === 'client_id')) continue
        const valid = await validRequest(op)
        const request: Sent = {
          actor: actorFor(op),
          op,
          url: urlOf(valid),
          idText: valid.idText,
          payload: JSON.stringify({ ...valid.body, [name]: 'nul\u0000byte' }),
          contentType: 'application/json',
        }
        const response = await send(request)
        const wrong = complaint(response)
        if (wrong) failures.push(`${wrong}: ${describeExchange(request, response)}`)
        else if (!lenient.has(name)) {
          const problem = response.json() as { code?: string; errors?: Array<{ field: string }> }
          if (
            response.statusCode !== 400 ||
            problem.code !== 'validation_failed' ||
            !problem.errors?.some((error) => error.field === name)
          ) {
            failures.push(`not a 400 naming ${name}: ${describeExchange(request, response)}`)
          }
        }
      }
    }
    assert.equal(failures.length, 0, `${failures.length} failing:\n${failures.join('\n')}`)
  })

  it('refuses a NUL byte in a query parameter or path segment with 400, never a 500', async () => {
    const failures: string[] = []
    for (const op of operations) {
      const textParams = op.parameters.filter((parameter) => {
        const schema = resolve(parameter.schema)
        return parameter.in === 'query' && schema.type === 'string' && !schema.enum
      })
      for (const parameter of textParams) {
        const valid = await validRequest(op)
        const request: Sent = {
          actor: 'admin',
          op,
          url: urlOf(valid, `${parameter.name}=ab%00cd`),
          idText: valid.idText,
          ...(valid.body && { payload: JSON.stringify(valid.body), contentType: 'application/json' }),
        }
        const response = await send(request)
        const wrong = complaint(response) ?? (response.statusCode === 400 ? undefined : 'not a 400')
        if (wrong) failures.push(`${wrong}: ${describeExchange(request, response)}`)
      }
    }
    for (const url of ['/clients/by-phone/%2B58412%00345', '/clients/by-phone/%00', '/users/1%00', '/leads/%00']) {
      const request: Sent = { actor: 'admin', op: { method: 'GET', path: url }, url }
      const response = await send(request)
      const wrong = complaint(response) ?? (response.statusCode === 400 ? undefined : 'not a 400')
      if (wrong) failures.push(`${wrong}: ${describeExchange(request, response)}`)
    }
    assert.equal(failures.length, 0, `${failures.length} failing:\n${failures.join('\n')}`)
  })

  it('answers a NUL byte in a login username, as a form or as JSON, without a 500', async () => {
    const login = operations.find((op) => op.operationId === 'login') as Operation
    for (const [payload, contentType] of [
      ['username=ad%00min&password=whatever-it-is', 'application/x-www-form-urlencoded'],
      [JSON.stringify({ username: 'ad\u0000min', password: 'whatever-it-is' }), 'application/json'],
    ] as const) {
      const request: Sent = { actor: 'anonymous', op: login, url: '/auth/login', payload, contentType }
      const response = await send(request)
      assertAnswer(request, response)
      assert.ok([400, 401].includes(response.statusCode), describeExchange(request, response))
    }
  })

  // ------------------------------------------------------------------ the explicit edges

  it('answers a body over the size limit with 413 on every operation that takes one', async () => {
    for (const op of bodyOps()) {
      const valid = await validRequest(op)
      const request: Sent = {
        actor: actorFor(op),
        op,
        url: urlOf(valid),
        idText: valid.idText,
        // Meta's notifications may be bigger than the API's own limit: the webhook's is Meta's maximum.
        payload: JSON.stringify({ ...valid.body, padding: 'x'.repeat(bodyLimitOf(op) + 1) }),
        contentType: 'application/json',
      }
      const response = await send(request)
      assertAnswer(request, response)
      assert.equal(response.statusCode, 413, describeExchange(request, response))
      assert.equal(response.json().code, 'body_too_large')
    }
  })

  it('answers text/plain and application/xml with 415 on every JSON operation', async () => {
    for (const op of bodyOps()) {
      for (const [contentType, payload] of [
        ['text/plain', 'username=a&password=b'],
        ['application/xml', '<client><contact_name>Ana</contact_name></client>'],
      ]) {
        const valid = await validRequest(op)
        const request: Sent = { actor: actorFor(op), op, url: urlOf(valid), idText: valid.idText, payload, contentType }
        const response = await send(request)
        assertAnswer(request, response)
        assert.equal(response.statusCode, 415, describeExchange(request, response))
        assert.equal(response.json().code, 'unsupported_media_type')
      }
    }
  })

  it('answers malformed JSON with 400 malformed_json on every operation that takes a body', async () => {
    for (const op of bodyOps()) {
      for (const payload of ['{"a": ', '{"a": 1,}', "{'a': 1}", '{"a": NaN}', '{"a": "\u0000"}']) {
        const valid = await validRequest(op)
        const request: Sent = {
          actor: actorFor(op),
          op,
          url: urlOf(valid),
          idText: valid.idText,
          payload,
          contentType: 'application/json',
        }
        const response = await send(request)
        assertAnswer(request, response)
        assert.equal(response.statusCode, 400, describeExchange(request, response))
        assert.equal(response.json().code, 'malformed_json', describeExchange(request, response))
      }
    }
  })

  it('refuses limit=1000000000 with 400 on every list', async () => {
    const lists = operations.filter((op) => op.parameters.some((p) => p.in === 'query' && p.name === 'limit'))
    assert.ok(lists.length >= 6, lists.map((op) => op.path).join(', '))
    for (const op of lists) {
      const valid = await validRequest(op)
      const request: Sent = { actor: 'admin', op, url: urlOf(valid, 'limit=1000000000') }
      const response = await send(request)
      assertAnswer(request, response)
      assert.equal(response.statusCode, 400, describeExchange(request, response))
      assert.deepEqual(
        response.json().errors.map((error: { field: string }) => error.field),
        ['limit'],
      )
    }
  })

  it('refuses an unknown query parameter with 400 on every operation, before doing anything', async () => {
    const failures: string[] = []
    for (const op of operations) {
      const valid = await validRequest(op)
      const request: Sent = {
        actor: actorFor(op),
        op,
        url: urlOf(valid, 'verbose=true'),
        idText: valid.idText,
        ...(valid.body && { payload: JSON.stringify(valid.body), contentType: 'application/json' }),
      }
      const response = await send(request)
      const wrong = complaint(response)
      const named =
        response.statusCode === 400 &&
        (response.json() as { errors?: Array<{ field: string }> }).errors?.some((error) => error.field === 'verbose')
      if (wrong || !named)
        failures.push(`${wrong ?? 'not a 400 naming verbose'}: ${describeExchange(request, response)}`)
    }
    assert.equal(failures.length, 0, `${failures.length} failing:\n${failures.join('\n')}`)
  })

  it('refuses a path id of 99999999999999999999 with 400 on every operation on one record', async () => {
    const byId = operations.filter((op) => op.path.includes('{id}'))
    assert.ok(byId.length >= 12)
    for (const op of byId) {
      const valid = await validRequest(op)
      const request: Sent = {
        actor: 'admin',
        op,
        url: op.path.replace('{id}', '99999999999999999999'),
        idText: '99999999999999999999',
        ...(valid.body && { payload: JSON.stringify(valid.body), contentType: 'application/json' }),
      }
      const response = await send(request)
      assertAnswer(request, response)
      assert.equal(response.statusCode, 400, describeExchange(request, response))
      assert.ok(
        response.json().errors.some((error: { field: string }) => error.field === 'id'),
        describeExchange(request, response),
      )
    }
  })

  it('answers a malformed URL or an over-long path segment with problem+json', async () => {
    for (const url of [
      '/clients/%',
      '/users/%E0%A4%A',
      `/clients/by-phone/${'9'.repeat(300)}`,
      `/leads/${'1'.repeat(300)}`,
    ]) {
      const request: Sent = { actor: 'admin', op: { method: 'GET', path: url }, url }
      const response = await send(request)
      assertAnswer(request, response)
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, describeExchange(request, response))
    }
  })

  it('refuses an assigned_to filter beyond the id range with 400 rather than a 500', async () => {
    for (const url of ['/leads?assigned_to=9999999999', '/leads/stats?assigned_to=2147483648']) {
      const op = operations.find((candidate) => candidate.method === 'GET' && candidate.path === url.split('?')[0])
      const request: Sent = { actor: 'admin', op: op as Operation, url }
      const response = await send(request)
      assertAnswer(request, response)
      assert.equal(response.statusCode, 400, describeExchange(request, response))
      assert.ok(response.json().errors.some((error: { field: string }) => error.field === 'assigned_to'))
    }
  })

  it('refuses a stats range of three centuries rather than listing every day of it', async () => {
    const op = operations.find((candidate) => candidate.operationId === 'getLeadStats') as Operation
    const request: Sent = { actor: 'admin', op, url: '/leads/stats?created_from=1900-01-01&created_to=2199-12-31' }
    const response = await send(request)
    assertAnswer(request, response)
    assert.equal(response.statusCode, 400, `${response.statusCode}, per_day of ${response.json().per_day?.length} days`)
  })

  // ------------------------------------------------------------------ generated requests

  it('never answers a generated request with a 5xx, a non-problem error or a leak', async (t) => {
    let index = 0
    for (const op of operations) {
      index += 1
      await t.test(`${op.method} ${op.path}`, async () => {
        const probes = [
          ...fc.sample(probeArb(op, 'admin'), { seed: SEED + index, numRuns: ADMIN_RUNS }),
          ...fc.sample(probeArb(op, 'sales'), { seed: SEED + 1000 + index, numRuns: SALES_RUNS }),
        ]
        const failures: string[] = []
        for (const probe of probes) {
          const request = toRequest(op, probe)
          const response = await send(request)
          let wrong = complaint(response)
          const adminOnly = op.path.startsWith('/users') || op.path.startsWith('/audit-logs')
          if (!wrong && probe.actor === 'sales' && adminOnly && response.statusCode < 300) {
            wrong = 'a sales user got a 2xx on an admin route'
          }
          if (wrong) failures.push(`${wrong}: ${describeExchange(request, response)}`)
        }
        assert.equal(failures.length, 0, `${failures.length} failing:\n${failures.join('\n')}`)
      })
    }
    // The users the requests acted as were never hit: every answer above came from the routes' logic.
    for (const actor of ['admin', 'sales'] as const) {
      assert.equal((await ctx.as(tokens[actor], 'GET', '/auth/me')).statusCode, 200, `${actor} token still works`)
    }
  })

  // ------------------------------------------------------------------ consistency, last

  it('leaves exactly the users, clients and leads the 2xx answers said, each with one create row', async () => {
    // A web form's answer names nothing it created: those records are known by their create rows.
    const byForms = await sql<{ table_name: Table; record_id: number }>`
      select table_name, record_id from audit_logs
      where action = 'create' and username like 'form:%' and table_name in ('clients', 'leads')`.execute(ctx.db)
    for (const row of byForms.rows) {
      const id = Number(row.record_id)
      created[row.table_name].add(id)
      if (row.table_name === 'clients') alive.clients.add(id)
    }
    const formLeads = await ctx.db
      .selectFrom('leads')
      .select(['id', 'client_id'])
      .where(
        'id',
        'in',
        byForms.rows
          .filter((row) => row.table_name === 'leads')
          .map((row) => Number(row.record_id))
          .concat(0),
      )
      .execute()
    for (const lead of formLeads) alive.leads.set(lead.id, lead.client_id)
    for (const table of TABLES) {
      const live = table === 'clients' || table === 'leads' ? sql`where deleted_at is null` : sql``
      const rows = await sql<{ id: number }>`select id from ${sql.table(table)} ${live} order by id`.execute(ctx.db)
      const ids = rows.rows.map((row) => Number(row.id))
      const expected = (table === 'leads' ? [...alive.leads.keys()] : [...alive[table]]).sort((a, b) => a - b)
      assert.equal(ids.length, expected.length, `${table}: row count`)
      assert.deepEqual(ids, expected, `${table}: ids`)
    }

    const audit = await sql<{ table_name: Table; record_id: number; action: string; n: number }>`
      select table_name, record_id, action, count(*)::int as n
      from audit_logs
      where action in ('create', 'delete')
      group by table_name, record_id, action
      order by table_name, record_id, action`.execute(ctx.db)
    for (const table of TABLES) {
      for (const [action, expected] of [
        ['create', created[table]],
        ['delete', deleted[table]],
      ] as const) {
        const rows = audit.rows.filter((row) => row.table_name === table && row.action === action)
        assert.deepEqual(
          rows.filter((row) => row.n !== 1),
          [],
          `${table}: more than one ${action} row for a record`,
        )
        assert.deepEqual(
          rows.map((row) => Number(row.record_id)),
          [...expected].sort((a, b) => a - b),
          `${table}: ${action} rows`,
        )
      }
    }

    const orphans = await sql<{ table_name: string; id: number }>`
      select 'clients' as table_name, c.id from clients c
      where not exists (
        select 1 from audit_logs a where a.table_name = 'clients' and a.record_id = c.id and a.action = 'create')
      union all
      select 'leads', l.id from leads l
      where not exists (
        select 1 from audit_logs a where a.table_name = 'leads' and a.record_id = l.id and a.action = 'create')`.execute(
      ctx.db,
    )
    assert.deepEqual(orphans.rows, [])
    assert.ok(created.clients.size > 10 && created.leads.size > 10, 'the generated requests created records')
  })
})
