import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { countHistoricResponses } from '../src/pipeline/first-response.js'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

const MIGRATION = 'db/migrations/20261207171000_first_response_history.sql'

interface Answer {
  id: number
  first_response_at: string | null
  response_seconds: number | null
  response_business_seconds: number | null
}

describe('first responses of leads from before they were recorded', () => {
  let ctx: TestContext
  let seller: TestUser

  before(async () => {
    ctx = await startTestContext()
    seller = await ctx.createUser('sales')
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', { time_zone: 'UTC' })
    assert.equal(put.statusCode, 200, put.body)
  })
  after(async () => {
    await ctx?.close()
  })

  const answerOf = async (id: number): Promise<Answer> => {
    const response = await ctx.as(ctx.adminToken, 'GET', `/leads/${id}`)
    assert.equal(response.statusCode, 200, response.body)
    const { first_response_at, response_seconds, response_business_seconds } = response.json()
    return { id, first_response_at, response_seconds, response_business_seconds }
  }
  const newLead = async (createdAt: string) => {
    const lead = await createLead(ctx, { client_id: (await createClient(ctx)).id }, seller.token)
    await ctx.db.updateTable('leads').set({ created_at: createdAt }).where('id', '=', lead.id).execute()
    return lead.id
  }
  const activity = async (leadId: number, body: Record<string, unknown>) => {
    const response = await ctx.as(seller.token, 'POST', `/leads/${leadId}/activities`, { body: 'Hecho', ...body })
    assert.equal(response.statusCode, 201, response.body)
  }

  it('takes them from activities and the audit log as the rule gives them, then counts their open hours', async () => {
    // Friday 4 December 2026, 17:00 UTC; called on Monday at 10:00 after a note.
    const called = await newLead('2026-12-04T17:00:00Z')
    await activity(called, { type: 'note', occurred_at: '2026-12-04T17:30:00Z' })
    await activity(called, { type: 'call', occurred_at: '2026-12-07T10:00:00Z' })
    // Moved out of new, then called later: the move answered it.
    const moved = await newLead('2026-12-01T09:00:00Z')
    const move = await ctx.as(seller.token, 'PATCH', `/leads/${moved}/status`, { status: 'contacted' })
    assert.equal(move.statusCode, 200, move.body)
    await activity(moved, { type: 'meeting' })
    // A call dated before the lead existed and a note: never answered.
    const waiting = await newLead('2026-12-03T12:00:00Z')
    await activity(waiting, { type: 'call', occurred_at: '2026-12-02T12:00:00Z' })
    await activity(waiting, { type: 'note' })

    const ids = [called, moved, waiting]
    const recorded = await Promise.all(ids.map(answerOf))
    assert.equal(recorded[0]?.first_response_at, '2026-12-07T10:00:00.000Z')
    assert.equal(recorded[0]?.response_business_seconds, 2 * 3600)
    assert.equal(recorded[2]?.first_response_at, null)

    // As the leads were before the release that records first responses.
    await ctx.db
      .updateTable('leads')
      .set({ first_response_at: null, response_business_seconds: null })
      .where('id', 'in', ids)
      .execute()
    const up = (await readFile(MIGRATION, 'utf8')).split('-- migrate:down')[0] as string
    await sql`drop index leads_uncounted_response_idx`.execute(ctx.db)
    await sql.raw(up).execute(ctx.db)

    const fromHistory = await Promise.all(ids.map(answerOf))
    assert.deepEqual(
      fromHistory.map((answer) => [
        answer.first_response_at,
        answer.response_seconds,
        answer.response_business_seconds,
      ]),
      recorded.map((answer) => [answer.first_response_at, answer.response_seconds, null]),
    )
    // The agenda's filter no longer lists the answered ones.
    const awaiting = await ctx.as(seller.token, 'GET', '/leads?assigned_to=me&awaiting_first_response=true')
    assert.deepEqual(
      awaiting.json().items.map((lead: { id: number }) => lead.id),
      [waiting],
    )

    assert.equal(await countHistoricResponses(ctx.db, 1), 2)
    assert.deepEqual(await Promise.all(ids.map(answerOf)), recorded)
    assert.equal(await countHistoricResponses(ctx.db), 0)
  })
})
