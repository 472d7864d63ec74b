import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { countRows, problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

describe('merging duplicate clients', () => {
  let ctx: TestContext
  let management: TestUser
  let seller: TestUser

  const newClient = (fields: Record<string, unknown>) => createClient(ctx, fields, management.token)
  const newLead = async (clientId: number) => {
    const { id } = await createLead(
      ctx,
      { client_id: clientId, channel: 'whatsapp', assigned_to: seller.id },
      management.token,
    )
    const note = await ctx.as(seller.token, 'POST', `/leads/${id}/activities`, { type: 'note', body: 'Llamó' })
    assert.equal(note.statusCode, 201, note.body)
    return id
  }
  const count = async (table: 'events' | 'lead_activities') =>
    Number((await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(ctx.db)).rows[0]?.n)

  before(async () => {
    ctx = await startTestContext()
    management = await ctx.createUser('management')
    seller = await ctx.createUser('sales')
  })
  after(() => ctx?.close())

  it('answers a dry run with what would change and writes nothing, then merges in one go', async () => {
    const kept = await newClient({ contact_name: 'Ana Duarte', phone: '+584148880001', email: 'ana@example.com' })
    const duplicate = await newClient({
      contact_name: 'Ana Duarte P.',
      phone: '+584148880002',
      email: 'otra@example.com',
      address: 'Calle 5, Valencia',
    })
    const keptLead = await newLead(kept.id)
    const moving = [await newLead(duplicate.id), await newLead(duplicate.id), await newLead(duplicate.id)]
    // A lead of the duplicate already in the trash stays with it.
    const trashedLead = await newLead(duplicate.id)
    assert.equal((await ctx.as(management.token, 'DELETE', `/leads/${trashedLead}`)).statusCode, 204)
    const before = {
      audit: await countRows(ctx.db, 'audit_logs'),
      events: await count('events'),
      activities: await count('lead_activities'),
    }

    const dryRun = await ctx.as(management.token, 'POST', `/clients/${kept.id}/merge`, {
      from_id: duplicate.id,
      dry_run: true,
    })
    assert.equal(dryRun.statusCode, 200, dryRun.body)
    assert.deepEqual(dryRun.json().filled, { address: 'Calle 5, Valencia' })
    assert.deepEqual(dryRun.json().lead_ids, moving)
    assert.equal(dryRun.json().dry_run, true)
    assert.equal(dryRun.json().client.address, 'Calle 5, Valencia')
    assert.equal(dryRun.json().client.email, 'ana@example.com')
    assert.deepEqual(
      { audit: await countRows(ctx.db, 'audit_logs'), events: await count('events') },
      { audit: before.audit, events: before.events },
    )
    assert.equal((await ctx.as(management.token, 'GET', `/clients/${kept.id}`)).json().address, null)
    assert.equal((await ctx.as(management.token, 'GET', `/clients/${duplicate.id}`)).json().leads_total, 3)

    const merged = await ctx.as(management.token, 'POST', `/clients/${kept.id}/merge`, { from_id: duplicate.id })
    assert.equal(merged.statusCode, 200, merged.body)
    assert.equal(merged.json().dry_run, false)
    assert.equal(merged.json().client.address, 'Calle 5, Valencia')

    const detail = (await ctx.as(management.token, 'GET', `/clients/${kept.id}`)).json()
    assert.equal(detail.address, 'Calle 5, Valencia')
    assert.equal(detail.email, 'ana@example.com')
    assert.deepEqual(detail.leads.map((lead: { id: number }) => lead.id).sort(), [keptLead, ...moving].sort())
    // The activities went with their leads: every one of the moved leads still shows its note.
    for (const id of moving) {
      const activities = (await ctx.as(seller.token, 'GET', `/leads/${id}/activities`)).json().items
      assert.ok(activities.some((activity: { type: string }) => activity.type === 'note'))
    }
    assert.equal(await count('lead_activities'), before.activities)

    // The duplicate is in the trash, its trashed lead with it; a restore gives it back without the moved leads.
    assert.equal((await ctx.as(management.token, 'GET', `/clients/${duplicate.id}`)).statusCode, 404)
    const trash = (await ctx.as(management.token, 'GET', '/trash?type=clients')).json().items
    assert.ok(trash.some((client: { id: number }) => client.id === duplicate.id))
    assert.equal(
      (await ctx.db.selectFrom('leads').select('client_id').where('id', '=', trashedLead).executeTakeFirstOrThrow())
        .client_id,
      duplicate.id,
    )

    // One merge row for each lead and each client, all of this request.
    const requestId = merged.headers['x-request-id']
    for (const id of moving) {
      const row = (await ctx.auditRows('leads', id)).at(-1)
      assert.equal(row?.action, 'merge')
      assert.deepEqual(row?.old_values, { client_id: duplicate.id })
      assert.deepEqual(row?.new_values, { client_id: kept.id })
      assert.equal(row?.request_id, requestId)
    }
    const keptRow = (await ctx.auditRows('clients', kept.id)).at(-1)
    assert.equal(keptRow?.action, 'merge')
    assert.deepEqual(keptRow?.old_values, { address: null })
    assert.deepEqual(keptRow?.new_values, { address: 'Calle 5, Valencia', merged_from: duplicate.id, lead_ids: moving })
    const sourceRow = (await ctx.auditRows('clients', duplicate.id)).at(-1)
    assert.equal(sourceRow?.action, 'merge')
    assert.deepEqual(sourceRow?.new_values, { merged_into: kept.id })
    const mergedEvents = await ctx.db
      .selectFrom('events')
      .select('data')
      .where('type', '=', 'client.merged')
      .where('resource_key', '=', `client:${kept.id}`)
      .execute()
    assert.equal(mergedEvents.length, 1)

    // The duplicate's phone is free again.
    await newClient({ contact_name: 'Nuevo', phone: duplicate.phone })
  })

  it('refuses the same id, a missing or trashed client, and sales users, writing nothing', async () => {
    const one = await newClient({ contact_name: 'Uno', phone: '+584148880011' })
    const other = await newClient({ contact_name: 'Otro', phone: '+584148880012' })
    const gone = await newClient({ contact_name: 'Ido', phone: '+584148880013' })
    assert.equal((await ctx.as(management.token, 'DELETE', `/clients/${gone.id}`)).statusCode, 204)
    const auditBefore = await countRows(ctx.db, 'audit_logs')

    const same = await ctx.as(management.token, 'POST', `/clients/${one.id}/merge`, { from_id: one.id })
    assert.equal(same.statusCode, 400)
    assert.equal(problemOf(same).errors?.[0]?.field, 'from_id')
    const trashedSource = await ctx.as(management.token, 'POST', `/clients/${one.id}/merge`, { from_id: gone.id })
    assert.equal(trashedSource.statusCode, 400)
    assert.equal(problemOf(trashedSource).errors?.[0]?.field, 'from_id')
    const missingSource = await ctx.as(management.token, 'POST', `/clients/${one.id}/merge`, { from_id: 999999 })
    assert.equal(missingSource.statusCode, 400)
    assert.equal(
      (await ctx.as(management.token, 'POST', `/clients/${gone.id}/merge`, { from_id: one.id })).statusCode,
      404,
    )
    assert.equal((await ctx.as(management.token, 'POST', '/clients/999999/merge', { from_id: one.id })).statusCode, 404)
    assert.equal(
      (await ctx.as(seller.token, 'POST', `/clients/${one.id}/merge`, { from_id: other.id })).statusCode,
      403,
    )
    const unknownField = await ctx.as(management.token, 'POST', `/clients/${one.id}/merge`, { from: other.id })
    assert.equal(unknownField.statusCode, 400)
    assert.equal(await countRows(ctx.db, 'audit_logs'), auditBefore)
  })

  it('shows a sales user only the ids of their own leads in a merge’s audit row; admins see all', async () => {
    const otherSeller = await ctx.createUser('sales')
    const kept = await newClient({ contact_name: 'Luis Mora', phone: '+584148880021' })
    const duplicate = await newClient({ contact_name: 'Luis Mora B.', phone: '+584148880022' })
    const own = await newLead(duplicate.id)
    const foreign: number[] = []
    for (const assignee of [otherSeller.id, otherSeller.id, null]) {
      const response = await ctx.as(management.token, 'POST', '/leads', {
        client_id: duplicate.id,
        channel: 'web',
        assigned_to: assignee,
      })
      assert.equal(response.statusCode, 201, response.body)
      foreign.push(response.json().id)
    }
    const merged = await ctx.as(management.token, 'POST', `/clients/${kept.id}/merge`, { from_id: duplicate.id })
    assert.equal(merged.statusCode, 200, merged.body)
    const all = [own, ...foreign].sort((a, b) => a - b)
    assert.deepEqual(
      [...merged.json().lead_ids].sort((a: number, b: number) => a - b),
      all,
    )

    type Row = {
      action: string
      old_values: { lead_ids?: number[] } | null
      new_values: { lead_ids?: number[] } | null
    }
    const history = async (token: string) => {
      const answer = await ctx.as(token, 'GET', `/clients/${kept.id}/history`)
      assert.equal(answer.statusCode, 200, answer.body)
      const rows = answer.json().items as Row[]
      const row = rows.find((item) => item.action === 'merge')
      assert.ok(row, answer.body)
      const listed = rows.flatMap((item) => [
        ...(item.old_values?.lead_ids ?? []),
        ...(item.new_values?.lead_ids ?? []),
      ])
      return { row, listed }
    }
    const seen = await history(seller.token)
    assert.deepEqual(seen.row.new_values?.lead_ids, [own])
    assert.deepEqual(seen.listed, [own], 'no other seller’s lead id anywhere in the history')
    assert.equal((seen.row.new_values as Record<string, unknown>).merged_from, duplicate.id)
    const theirs = await history(otherSeller.token)
    assert.deepEqual(theirs.row.new_values?.lead_ids, foreign.slice(0, 2))
    for (const token of [ctx.adminToken, management.token]) {
      const { row } = await history(token)
      assert.deepEqual(
        [...(row.new_values?.lead_ids ?? [])].sort((a, b) => a - b),
        all,
      )
    }
  })
})
