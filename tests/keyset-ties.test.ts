import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CompiledQuery, type KyselyPlugin, type QueryId, type RootOperationNode, sql } from 'kysely'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import { listClients } from '../src/clients/queries.js'
import type { Database } from '../src/db/database.js'
import { cursorAfter } from '../src/db/paginate.js'
import { listLeads } from '../src/leads/queries.js'
import { clientExportBatches, leadExportBatches } from '../src/spreadsheets/exports.js'
import { EXPORT_BATCH_SIZE } from '../src/spreadsheets/keyset.js'
import { mode, startTestContext, type TestContext } from './helpers/context.js'

// Rows that share one creation time, as one import's transaction makes them: fewer on the embedded
// database, which is slower, still many times a batch.
const TIED = mode === 'server' ? 100_000 : 20_000
const TIED_CLIENTS = TIED / 5
const TIE = '2026-06-01 10:00:00.123456+00'
const TIE_MICROS = Date.UTC(2026, 5, 1, 10, 0, 0, 123) * 1000 + 456
const ADMIN: AuthenticatedActor = { userId: 1, username: 'admin', role: 'admin', requestId: null }

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Actual Rows': number
  'Actual Loops': number
  'Rows Removed by Filter'?: number
  'Rows Removed by Index Recheck'?: number
  Plans?: PlanNode[]
}

/** The statements a Kysely instance sends, as it sends them. */
function recorder(db: Database): { db: Database; last(pattern: RegExp): CompiledQuery } {
  const sent: Array<{ node: RootOperationNode; queryId: QueryId }> = []
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      sent.push(args)
      return args.node
    },
    transformResult: async (args) => args.result,
  }
  return {
    db: db.withPlugin(plugin),
    last(pattern) {
      const compiled = sent.map(({ node, queryId }) => db.getExecutor().compileQuery(node, queryId))
      const found = compiled.filter((query) => pattern.test(query.sql)).at(-1)
      assert.ok(found, `a statement matching ${pattern}`)
      return found
    },
  }
}

/** How many rows of `table` the statement's scans read (kept or filtered out), by EXPLAIN ANALYZE. */
async function rowsRead(db: Database, statement: CompiledQuery, table: string): Promise<number> {
  const { rows } = await db.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
    CompiledQuery.raw(`explain (analyze, format json) ${statement.sql}`, [...statement.parameters]),
  )
  const plan = rows[0]?.['QUERY PLAN'][0]?.Plan
  assert.ok(plan)
  const read = (node: PlanNode): number =>
    (node['Relation Name'] === table
      ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) *
        node['Actual Loops']
      : 0) + (node.Plans ?? []).reduce((sum, child) => sum + read(child), 0)
  return read(plan)
}

describe('keyset pages over rows that share their sort value', () => {
  let ctx: TestContext
  let tiedIds: { first: number; last: number }

  before(async () => {
    ctx = await startTestContext()
    // 1,000 clients and 2,000 leads spread over the hours around the tie, then TIED leads of one client at one instant
    // and TIED_CLIENTS clients of one name: the statistics see one value covering most rows.
    await sql`
      insert into clients (client_type, contact_name, phone, created_at)
        select 'natural', 'Cliente ' || i, '+58412' || lpad(i::text, 7, '0'), now() - i * interval '1 hour'
        from generate_series(1, 1000) as i`.execute(ctx.db)
    await sql`
      insert into leads (client_id, channel, created_at, updated_at, status_changed_at)
        select (i % 1000) + 1, 'web', t, t, t
        from generate_series(1, 2000) as i,
          lateral (select ${TIE}::timestamptz + (i - 1000) * interval '1 minute' as t) as at`.execute(ctx.db)
    const tied = await sql<{ first: number; last: number }>`
      with inserted as (
        insert into leads (client_id, channel, created_at, updated_at, status_changed_at)
          select 1, 'web', ${TIE}::timestamptz, ${TIE}::timestamptz, ${TIE}::timestamptz
          from generate_series(1, ${TIED})
        returning id)
      select min(id) as first, max(id) as last from inserted`.execute(ctx.db)
    tiedIds = { first: Number(tied.rows[0]?.first), last: Number(tied.rows[0]?.last) }
    await sql`
      insert into clients (client_type, contact_name, phone, created_at)
        select 'natural', 'María Pérez', '+58414' || lpad(i::text, 7, '0'), ${TIE}::timestamptz
        from generate_series(1, ${TIED_CLIENTS}) as i`.execute(ctx.db)
    await sql`analyze`.execute(ctx.db)
  })
  after(() => ctx?.close())

  it('read about one batch per export batch deep in the tie, whichever way and column it is sorted', async () => {
    for (const sort of ['-created_at', 'created_at', '-status_changed_at', 'updated_at'] as const) {
      const recording = recorder(ctx.db)
      const batches = leadExportBatches(recording.db, ADMIN, { sort })
      const seen: number[] = []
      // A quarter into the tie, whichever end it is read from: three quarters of it remain.
      const deep = 1000 + TIED / 4
      for await (const batch of batches) {
        seen.push(...batch.map((row) => row.id))
        if (seen.length >= deep) break
      }
      const inTie = seen.filter((id) => id >= tiedIds.first)
      const expected = Array.from({ length: inTie.length }, (_, index) =>
        sort.startsWith('-') ? tiedIds.last - index : tiedIds.first + index,
      )
      assert.deepEqual(inTie, expected, `${sort}: the tie in id order, none skipped or repeated`)
      const read = await rowsRead(ctx.db, recording.last(/from "leads"/), 'leads')
      assert.ok(read <= 3 * EXPORT_BATCH_SIZE, `${sort}: the last batch read ${read} leads`)
    }
  })

  it('read about one batch for the clients of one name sorted by name', async () => {
    const recording = recorder(ctx.db)
    let seen = 0
    for await (const batch of clientExportBatches(recording.db, ADMIN, { sort: 'contact_name' })) {
      seen += batch.length
      if (seen >= TIED_CLIENTS / 2) break
    }
    const read = await rowsRead(ctx.db, recording.last(/from "clients"/), 'clients')
    assert.ok(read <= 3 * EXPORT_BATCH_SIZE, `the last batch read ${read} clients`)
  })

  it('read about one page for a list page deep in the tie', async () => {
    const middle = tiedIds.first + TIED / 2
    const recording = recorder(ctx.db)
    for (const [sort, next] of [
      ['-created_at', middle - 1],
      ['created_at', middle + 1],
    ] as const) {
      const cursor = cursorAfter([TIE_MICROS, middle], { sort })
      const page = await listLeads(recording.db, ADMIN, { sort, limit: 50, offset: 0, cursor })
      assert.deepEqual(
        page.items.slice(0, 2).map((lead) => lead.id),
        [next, sort.startsWith('-') ? next - 1 : next + 1],
      )
      assert.equal(typeof page.next_cursor, 'string')
      const read = await rowsRead(ctx.db, recording.last(/page_key/), 'leads')
      assert.ok(read <= 3 * 51, `${sort}: the page read ${read} leads`)
    }
    // A client list sorted by name, from a cursor half way into the one name.
    const clients = await listClients(recording.db, ADMIN, { sort: '-contact_name', limit: 50, offset: 0 })
    const start = clients.items.find((client) => client.contact_name === 'María Pérez')
    assert.ok(start)
    const cursor = cursorAfter(['María Pérez', start.id - TIED_CLIENTS / 2], { sort: '-contact_name' })
    const page = await listClients(recording.db, ADMIN, { sort: '-contact_name', limit: 50, offset: 0, cursor })
    assert.equal(page.items[0]?.id, start.id - TIED_CLIENTS / 2 - 1)
    const read = await rowsRead(ctx.db, recording.last(/page_key/), 'clients')
    assert.ok(read <= 3 * 51, `the client page read ${read} clients`)
  })
})
