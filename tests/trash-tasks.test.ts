import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startTestContext, type TestContext } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

describe('tasks of what the trash purges', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext()
  })
  after(async () => {
    await ctx?.close()
  })

  const newTask = async (parent: Record<string, number>) => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/tasks', {
      title: 'Llamar',
      due_at: '2027-01-10T15:00:00Z',
      ...parent,
    })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { id: number }
  }
  const eventsOf = (taskId: number) =>
    ctx.db
      .selectFrom('events')
      .select(['type', 'data'])
      .where('resource_key', '=', `task:${taskId}`)
      .orderBy('id')
      .execute()

  it('go with them, each with a purge audit row and a task.deleted event; other tasks stay', async () => {
    const client = await createClient(ctx)
    const lead = await createLead(ctx, { client_id: client.id })
    const onLead = await newTask({ lead_id: lead.id })
    const onClient = await newTask({ client_id: client.id })
    const other = await newTask({ lead_id: (await createLead(ctx, { client_id: (await createClient(ctx)).id })).id })

    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/clients/${client.id}?cascade=true`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/clients/${client.id}`)).statusCode, 204)

    for (const task of [onLead, onClient]) {
      assert.equal((await ctx.as(ctx.adminToken, 'GET', `/tasks/${task.id}`)).statusCode, 404)
      const audit = await ctx.auditRows('tasks', task.id)
      assert.deepEqual(
        audit.map((row) => row.action),
        ['create', 'purge'],
      )
      assert.equal(audit[1]?.new_values?.id, task.id)
      const events = await eventsOf(task.id)
      assert.deepEqual(
        events.map((event) => event.type),
        ['task.created', 'task.deleted'],
      )
      assert.equal((events[1]?.data as { object?: { id: number } } | undefined)?.object?.id, task.id)
    }
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/tasks/${other.id}`)).statusCode, 200)
    assert.deepEqual(
      (await eventsOf(other.id)).map((event) => event.type),
      ['task.created'],
    )
  })

  it('of a lead purged on its own go with it too', async () => {
    const lead = await createLead(ctx, { client_id: (await createClient(ctx)).id })
    const task = await newTask({ lead_id: lead.id })
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/leads/${lead.id}`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/leads/${lead.id}`)).statusCode, 204)
    assert.deepEqual(
      (await ctx.auditRows('tasks', task.id)).map((row) => row.action),
      ['create', 'purge'],
    )
  })
})
