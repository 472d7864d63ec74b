import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { ADMIN, type AuditRow, mode, serverEnvironment } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { type ServerProcess, startServer } from './helpers/server.js'

type Status = 'new' | 'contacted' | 'quoted' | 'closed' | 'discarded'
type Table = 'clients' | 'leads'

// The transition table of API.md as an admin sees it (closed and discarded reopen to contacted).
const NEXT: Record<Status, Status[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: ['contacted'],
  discarded: ['contacted'],
}

// The fields the audit rows carry and the API returns, per table (timestamps aside).
const FIELDS: Record<Table, string[]> = {
  clients: ['client_type', 'contact_name', 'company_name', 'phone', 'email', 'address'],
  leads: ['client_id', 'channel', 'status', 'admin_notes', 'sales_notes', 'assigned_to'],
}

const LOOPS = 4
const MAX_REQUESTS_PER_LOOP = 1500
const MIN_ACKNOWLEDGED = 40

type Row = Record<string, unknown> & { id: number }

interface Snapshot {
  records: Record<Table, Map<number, Row>>
  audit: AuditRow[]
}

/** A mutation the stream sent: `acknowledged` once the server answered it with success. */
interface Mutation {
  requestId: string
  table: Table
  action: 'create' | 'update' | 'delete'
  recordId?: number
  acknowledged: boolean
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function login(url: string): Promise<string> {
  const response = await checkedFetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  })
  assert.equal(response.status, 200)
  return ((await response.json()) as { access_token: string }).access_token
}

async function call(url: string, token: string, method: string, path: string, body?: unknown, requestId?: string) {
  const response = await checkedFetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(requestId && { 'x-request-id': requestId }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await response.text()
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any }
}

/** Every page of a list route. */
async function readAll(url: string, token: string, path: string): Promise<Row[]> {
  const items: Row[] = []
  for (let offset = 0; ; offset += 200) {
    const separator = path.includes('?') ? '&' : '?'
    const page = await call(url, token, 'GET', `${path}${separator}limit=200&offset=${offset}`)
    assert.equal(page.status, 200, JSON.stringify(page.body))
    items.push(...page.body.items)
    if (items.length >= page.body.total || page.body.items.length === 0) return items
  }
}

/**
 * The clients, leads and their audit rows as the database holds them: read straight from the
 * PostgreSQL server, or, on the embedded database (whose one owner is the server process), through
 * the API as admin.
 */
async function snapshot(server: ServerProcess, env: Record<string, string>): Promise<Snapshot> {
  const byId = (rows: Row[]) => new Map(rows.map((row) => [row.id, row]))
  if (mode === 'server') {
    const client = new pg.Client({ connectionString: env.DATABASE_URL })
    await client.connect()
    try {
      // A deleted record is in the trash: what exists is what every read still shows.
      const clients = await client.query(
        `select ${FIELDS.clients.join(', ')}, id from clients where deleted_at is null`,
      )
      const leads = await client.query(`select ${FIELDS.leads.join(', ')}, id from leads where deleted_at is null`)
      const audit = await client.query(
        `select id::int, table_name, record_id, action, old_values, new_values, user_id, username, request_id
         from audit_logs where table_name in ('clients', 'leads') order by id`,
      )
      return { records: { clients: byId(clients.rows), leads: byId(leads.rows) }, audit: audit.rows }
    } finally {
      await client.end()
    }
  }
  const token = await login(server.url)
  const audit = [
    ...(await readAll(server.url, token, '/audit-logs?table_name=clients')),
    ...(await readAll(server.url, token, '/audit-logs?table_name=leads')),
  ] as unknown as AuditRow[]
  audit.sort((a, b) => a.id - b.id)
  return {
    records: {
      clients: byId(await readAll(server.url, token, '/clients')),
      leads: byId(await readAll(server.url, token, '/leads')),
    },
    audit,
  }
}

type Kind = 'create-client' | 'create-lead' | 'status' | 'address' | 'delete-lead' | 'delete-client'
const CYCLE: Kind[] = [
  'status',
  'delete-lead',
  'address',
  'delete-client',
  'create-lead',
  'status',
  'address',
  'create-client',
]

/** Two clients and two leads first, then a cycle of every kind of change, each loop at another point of it. */
function nextKind(loopIndex: number, step: number, clients: number, leads: number): Kind {
  if (clients < 2) return 'create-client'
  if (leads < 2) return 'create-lead'
  return CYCLE[(step + loopIndex * 2) % CYCLE.length] as Kind
}

/**
 * Several loops, each on clients and leads of its own (so it always knows their state and sends
 * only changes that should succeed), create, change and delete until the server goes away.
 */
function mutationStream(url: string, token: string) {
  const mutations: Mutation[] = []
  const unexpected: string[] = []
  let stopped = false
  let acknowledged = 0

  const loop = async (loopIndex: number) => {
    const clients = new Map<number, { address: string | null }>()
    const leads = new Map<number, { status: Status; clientId: number }>()
    for (let step = 0; step < MAX_REQUESTS_PER_LOOP && !stopped; step++) {
      const requestId = `crash-${loopIndex}-${step}-${randomBytes(3).toString('hex')}`
      const clientIds = [...clients.keys()]
      const leadIds = [...leads.keys()]
      const kind = nextKind(loopIndex, step, clientIds.length, leadIds.length)
      let mutation: Mutation
      let send: () => Promise<{ status: number; body: { id?: number; status?: string; address?: string } }>
      let expected: number
      let apply: (body: { id?: number }) => void

      if (kind === 'create-client') {
        const phone = `+58412${String(loopIndex * 100_000 + step).padStart(7, '0')}`
        mutation = { requestId, table: 'clients', action: 'create', acknowledged: false }
        send = () =>
          call(url, token, 'POST', '/clients', { contact_name: `Crash ${loopIndex}-${step}`, phone }, requestId)
        expected = 201
        apply = (body) => clients.set(body.id as number, { address: null })
      } else if (kind === 'create-lead') {
        const clientId = pick(clientIds)
        mutation = { requestId, table: 'leads', action: 'create', acknowledged: false }
        send = () => call(url, token, 'POST', '/leads', { client_id: clientId, channel: 'web' }, requestId)
        expected = 201
        apply = (body) => leads.set(body.id as number, { status: 'new', clientId })
      } else if (kind === 'status') {
        const leadId = pick(leadIds)
        const status = pick(NEXT[leads.get(leadId)?.status as Status])
        mutation = { requestId, table: 'leads', action: 'update', recordId: leadId, acknowledged: false }
        const lostReason = status === 'discarded' ? { lost_reason: 'price' } : {}
        send = () => call(url, token, 'PATCH', `/leads/${leadId}/status`, { status, ...lostReason }, requestId)
        expected = 200
        apply = () => leads.set(leadId, { status, clientId: leads.get(leadId)?.clientId as number })
      } else if (kind === 'address') {
        const clientId = pick(clientIds)
        const address = `Calle ${loopIndex}-${step}, Valencia`
        mutation = { requestId, table: 'clients', action: 'update', recordId: clientId, acknowledged: false }
        send = () => call(url, token, 'PATCH', `/clients/${clientId}`, { address }, requestId)
        expected = 200
        apply = () => clients.set(clientId, { address })
      } else if (kind === 'delete-lead') {
        const leadId = pick(leadIds)
        mutation = { requestId, table: 'leads', action: 'delete', recordId: leadId, acknowledged: false }
        send = () => call(url, token, 'DELETE', `/leads/${leadId}`, undefined, requestId)
        expected = 204
        apply = () => leads.delete(leadId)
      } else {
        const clientId = pick(clientIds)
        mutation = { requestId, table: 'clients', action: 'delete', recordId: clientId, acknowledged: false }
        send = () => call(url, token, 'DELETE', `/clients/${clientId}?cascade=true`, undefined, requestId)
        expected = 204
        apply = () => {
          clients.delete(clientId)
          for (const [leadId, lead] of leads) if (lead.clientId === clientId) leads.delete(leadId)
        }
      }

      mutations.push(mutation)
      let answer: Awaited<ReturnType<typeof send>>
      try {
        answer = await send()
      } catch (error) {
        // The server went away under this request: it may or may not have been committed.
        if (stopped) return
        unexpected.push(`${requestId}: ${(error as Error).message}`)
        return
      }
      if (answer.status !== expected) {
        unexpected.push(`${requestId}: ${answer.status} ${JSON.stringify(answer.body)}`)
        return
      }
      mutation.acknowledged = true
      if (mutation.action === 'create') mutation.recordId = answer.body?.id
      acknowledged += 1
      apply(answer.body ?? {})
    }
  }

  const loops = Array.from({ length: LOOPS }, (_, index) => loop(index))
  return {
    mutations,
    unexpected,
    get acknowledged() {
      return acknowledged
    },
    running: Promise.all(loops),
    stop() {
      stopped = true
    },
  }
}

/**
 * Walks each record's audit rows in order and checks them against the database: a first row that
 * creates it, updates that start where the previous row ended, nothing after a delete, and a record
 * that exists exactly when its last row is not a delete, holding the values its rows add up to.
 */
function assertAuditMatchesDatabase(data: Snapshot): void {
  const groups = new Map<string, AuditRow[]>()
  for (const row of data.audit) {
    const key = `${row.table_name}:${row.record_id}`
    groups.set(key, [...(groups.get(key) ?? []), row])
  }
  for (const table of ['clients', 'leads'] as const) {
    for (const id of data.records[table].keys()) {
      assert.ok(groups.has(`${table}:${id}`), `${table} ${id} exists without a create row`)
    }
  }
  for (const [key, rows] of groups) {
    const table = rows[0]?.table_name as Table
    const fields = FIELDS[table]
    assert.equal(rows[0]?.action, 'create', `${key}: the first row creates it`)
    const state: Record<string, unknown> = {}
    for (const field of fields) state[field] = rows[0]?.new_values?.[field]
    for (const [index, row] of rows.entries()) {
      if (index === 0) continue
      assert.notEqual(rows[index - 1]?.action, 'delete', `${key}: row ${row.id} follows its delete`)
      if (row.action === 'update') {
        for (const [field, value] of Object.entries(row.old_values ?? {})) {
          if (fields.includes(field)) {
            assert.deepEqual(
              value,
              state[field],
              `${key}: row ${row.id} starts where the previous one ended (${field})`,
            )
          }
        }
        for (const [field, value] of Object.entries(row.new_values ?? {})) state[field] = value
        if (table === 'leads' && row.new_values?.status !== undefined) {
          const from = row.old_values?.status as Status
          assert.ok(NEXT[from].includes(row.new_values.status as Status), `${key}: ${from} → ${row.new_values.status}`)
        }
      } else {
        assert.equal(row.action, 'delete', `${key}: row ${row.id} is a second create`)
        for (const field of fields) {
          assert.deepEqual(
            row.old_values?.[field],
            state[field],
            `${key}: the delete row holds the last state (${field})`,
          )
        }
      }
    }
    const record = data.records[table].get(rows[0]?.record_id as number)
    if (rows.at(-1)?.action === 'delete') {
      assert.equal(record, undefined, `${key} has a delete row, yet exists`)
    } else {
      assert.ok(record, `${key}: its last row is ${rows.at(-1)?.action}, yet it does not exist`)
      for (const field of fields) {
        assert.deepEqual(record[field], state[field], `${key}: ${field} differs from its audit rows`)
      }
    }
  }
}

describe('a server killed mid-stream', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  it('loses no audit row and no acknowledged change to kill -9, and stops cleanly afterwards', async () => {
    const environment = await serverEnvironment()
    cleanups.push(() => environment.cleanup())
    const { env } = environment

    const first = await startServer(env)
    cleanups.push(async () => first.child.kill('SIGKILL'))
    const stream = mutationStream(first.url, await login(first.url))

    // Kill at a moment between 1 and 3 seconds in, once the stream has had enough answers to have made
    // every kind of change.
    const killAt = Date.now() + 1000 + Math.floor(Math.random() * 2000)
    const giveUpAt = Date.now() + 30_000
    let loopsEnded = false
    stream.running.then(() => {
      loopsEnded = true
    })
    while ((Date.now() < killAt || stream.acknowledged < MIN_ACKNOWLEDGED) && Date.now() < giveUpAt && !loopsEnded)
      await sleep(20)
    assert.deepEqual(stream.unexpected, [], 'every mutation before the kill succeeded')
    assert.ok(!loopsEnded, 'the stream was still running at the kill')
    stream.stop()
    first.child.kill('SIGKILL')
    await first.exited
    await stream.running
    assert.deepEqual(stream.unexpected, [])
    assert.ok(stream.acknowledged >= MIN_ACKNOWLEDGED, `${stream.acknowledged} acknowledged before the kill`)
    const kinds = new Set(stream.mutations.filter((m) => m.acknowledged).map((m) => `${m.action} ${m.table}`))
    assert.equal(kinds.size, 6, `every kind of change was made: ${[...kinds].join(', ')}`)

    const second = await startServer(env)
    cleanups.push(async () => second.child.kill('SIGKILL'))
    const data = await snapshot(second, env)

    assertAuditMatchesDatabase(data)

    // No row without a request that made it, and no acknowledged change without its row.
    const sent = new Map(stream.mutations.map((mutation) => [mutation.requestId, mutation]))
    const rowsByRequest = new Map<string, AuditRow[]>()
    for (const row of data.audit) {
      const mutation = sent.get(row.request_id as string)
      assert.ok(mutation, `audit row ${row.id} (${row.request_id}) answers no request of the stream`)
      rowsByRequest.set(mutation.requestId, [...(rowsByRequest.get(mutation.requestId) ?? []), row])
    }
    for (const mutation of stream.mutations.filter((m) => m.acknowledged)) {
      const rows = rowsByRequest.get(mutation.requestId) ?? []
      const own = rows.filter((row) => row.table_name === mutation.table && row.record_id === mutation.recordId)
      assert.equal(own.length, 1, `acknowledged ${mutation.action} of ${mutation.table} ${mutation.recordId}`)
      assert.equal(own[0]?.action, mutation.action)
    }
    const inFlight = stream.mutations.filter((mutation) => !mutation.acknowledged).length
    assert.ok(inFlight <= LOOPS, `${inFlight} requests were in flight at the kill`)

    // The restarted server works, and a SIGTERM stops it cleanly.
    const token = await login(second.url)
    const created = await call(second.url, token, 'POST', '/clients', { contact_name: 'After', phone: '+584269990000' })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    assert.equal(await second.stop(), 0, 'SIGTERM exits 0')
  })
})
