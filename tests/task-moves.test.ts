import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startTestContext, type TestContext } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

describe('tasks moved between leads at once', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext()
  })
  after(async () => {
    await ctx?.close()
  })

  it('cross between the same two leads without a conflict, and each lead’s next_task_at follows', async () => {
    const first = await createLead(ctx, { client_id: (await createClient(ctx)).id })
    const second = await createLead(ctx, { client_id: (await createClient(ctx)).id })
    const task = async (leadId: number, dueAt: string) => {
      const response = await ctx.as(ctx.adminToken, 'POST', '/tasks', {
        title: 'Llamar',
        due_at: dueAt,
        lead_id: leadId,
      })
      assert.equal(response.statusCode, 201, response.body)
      return response.json().id as number
    }
    const early = await task(first.id, '2027-01-01T10:00:00.000Z')
    const late = await task(second.id, '2027-02-01T10:00:00.000Z')
    const leadOf = new Map([
      [early, first.id],
      [late, second.id],
    ])
    for (let round = 0; round < 15; round += 1) {
      const moves = [early, late].map((id) => {
        const to = leadOf.get(id) === first.id ? second.id : first.id
        leadOf.set(id, to)
        return ctx.as(ctx.adminToken, 'PATCH', `/tasks/${id}`, { lead_id: to })
      })
      const answers = await Promise.all(moves)
      assert.deepEqual(
        answers.map((answer) => answer.statusCode),
        [200, 200],
        answers.map((answer) => answer.body).join('\n'),
      )
    }
    const nextOf = async (leadId: number) =>
      (await ctx.as(ctx.adminToken, 'GET', `/leads/${leadId}`)).json().next_task_at
    // Fifteen crossings: each task ends on the other lead.
    assert.equal(await nextOf(second.id), '2027-01-01T10:00:00.000Z')
    assert.equal(await nextOf(first.id), '2027-02-01T10:00:00.000Z')
  })
})
