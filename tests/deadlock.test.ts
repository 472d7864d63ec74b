import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import pg from 'pg'
import { problemOf, SERVER_URL, startTestContext, type TestContext } from './helpers/context.js'

describe('a deadlock', () => {
  let ctx: TestContext | undefined
  after(() => ctx?.close())

  it('is a clean 409 concurrent_change for the change PostgreSQL cancels, and nothing of it is kept', async (t) => {
    if (!SERVER_URL)
      return t.skip('needs a PostgreSQL server (TEST_DATABASE_URL): the embedded one runs one transaction at a time')
    ctx = await startTestContext()
    const test = ctx
    const client = await test.as(test.adminToken, 'POST', '/clients', {
      contact_name: 'Ana Lock',
      phone: '+584141000077',
    })
    const lead = await test.as(test.adminToken, 'POST', '/leads', { client_id: client.json().id, channel: 'web' })
    assert.equal(lead.statusCode, 201, lead.body)
    const leadId = lead.json().id as number

    // Another session holds the lead counters, so the status change waits for them while it holds the lead's
    // row; then that session asks for the lead's row: each waits on the other.
    const other = new pg.Client({ connectionString: test.url })
    await other.connect()
    try {
      await other.query('begin')
      await other.query('lock table lead_totals in share row exclusive mode')
      const change = test.as(test.adminToken, 'PATCH', `/leads/${leadId}/status`, { status: 'contacted' })
      const waiting = async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_locks where not granted and relation = 'lead_totals'::regclass`.execute(
          test.db,
        )
        return (rows[0]?.n ?? 0) > 0
      }
      for (let tries = 0; !(await waiting()); tries += 1) {
        assert.ok(tries < 200, 'the status change never waited for the counters')
        await sleep(25)
      }
      const blocked = other
        .query('update leads set sales_notes = sales_notes where id = $1', [leadId])
        .catch((error) => error)

      const response = await change
      assert.equal(response.statusCode, 409, response.body)
      assert.equal(problemOf(response).code, 'concurrent_change')
      assert.ok(!((await blocked) instanceof Error), 'the other session went on')
    } finally {
      await other.query('rollback').catch(() => undefined)
      await other.end()
    }

    const now = await test.as(test.adminToken, 'GET', `/leads/${leadId}`)
    assert.equal(now.json().status, 'new')
    assert.deepEqual(
      (await test.auditRows('leads', leadId)).map((row) => row.action),
      ['create'],
    )
  })
})
