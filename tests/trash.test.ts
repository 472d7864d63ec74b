import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parse } from 'csv-parse/sync'
import { sql } from 'kysely'
import { systemActor } from '../src/auth/actor.js'
import { purgeExpiredTrash } from '../src/trash/service.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

describe('trash', () => {
  let ctx: TestContext
  let management: TestUser
  let seller: TestUser

  const newClient = (fields: Record<string, unknown>) => createClient(ctx, fields, management.token)
  const newLead = (clientId: number, fields: Record<string, unknown> = {}) =>
    createLead(ctx, { client_id: clientId, ...fields }, management.token)
  const ids = (response: { json(): { items: Array<{ id: number }> } }) => response.json().items.map((item) => item.id)
  const eventsOf = async (type: string, id: number) =>
    (
      await ctx.db
        .selectFrom('events')
        .select('data')
        .where('type', '=', type)
        .where('resource_key', 'like', `%:${id}`)
        .execute()
    ).length

  before(async () => {
    ctx = await startTestContext()
    management = await ctx.createUser('management')
    seller = await ctx.createUser('sales')
  })
  after(() => ctx?.close())

  it('hides a trashed client from lists, search, by-phone, detail, exports and stats, and frees its phone', async () => {
    const client = await newClient({ contact_name: 'Papelera Ramírez', phone: '+584147770001' })
    const lead = await newLead(client.id, { assigned_to: seller.id, status: 'closed' })
    const statsBefore = (await ctx.as(management.token, 'GET', '/leads/stats')).json()
    const sellerStatsBefore = (await ctx.as(seller.token, 'GET', '/leads/stats')).json()

    const trashed = await ctx.as(management.token, 'DELETE', `/clients/${client.id}?cascade=true`)
    assert.equal(trashed.statusCode, 204)

    assert.ok(!ids(await ctx.as(management.token, 'GET', '/clients?limit=200')).includes(client.id))
    assert.ok(!ids(await ctx.as(management.token, 'GET', '/clients?q=ramirez')).includes(client.id))
    assert.deepEqual(ids(await ctx.as(management.token, 'GET', '/clients/search?q=papelera')), [])
    assert.equal((await ctx.as(management.token, 'GET', `/clients/by-phone/${client.phone}`)).statusCode, 404)
    assert.equal((await ctx.as(management.token, 'GET', `/clients/${client.id}`)).statusCode, 404)
    assert.equal((await ctx.as(management.token, 'GET', `/leads/${lead.id}`)).statusCode, 404)
    assert.ok(!ids(await ctx.as(management.token, 'GET', '/leads?q=papelera')).includes(lead.id))
    assert.equal((await ctx.as(seller.token, 'GET', '/leads')).json().total, 0)
    const clientsCsv = parse(
      (await ctx.inject({ method: 'GET', url: '/clients/export?format=csv', headers: auth(management) })).rawPayload,
      { bom: true, columns: true },
    ) as Array<{ id: string }>
    assert.ok(!clientsCsv.some((row) => Number(row.id) === client.id))
    const leadsCsv = parse(
      (await ctx.inject({ method: 'GET', url: '/leads/export?format=csv', headers: auth(management) })).rawPayload,
      { bom: true, columns: true },
    ) as Array<{ id: string }>
    assert.ok(!leadsCsv.some((row) => Number(row.id) === lead.id))
    // The counters (no filter) and the scan (client_id) both leave it out.
    const statsAfter = (await ctx.as(management.token, 'GET', '/leads/stats')).json()
    assert.equal(statsAfter.total, statsBefore.total - 1)
    assert.equal(statsAfter.by_status.closed, statsBefore.by_status.closed - 1)
    assert.equal((await ctx.as(seller.token, 'GET', '/leads/stats')).json().total, sellerStatsBefore.total - 1)
    assert.equal((await ctx.as(management.token, 'GET', `/leads/stats?client_id=${client.id}`)).json().total, 0)
    // No lead joins a trashed client.
    const refused = await ctx.as(management.token, 'POST', '/leads', { client_id: client.id, channel: 'web' })
    assert.equal(refused.statusCode, 400)
    assert.equal(problemOf(refused).errors?.[0]?.field, 'client_id')

    // Its phone is free for a new client; restoring the old one then is a 409 naming the new one.
    const successor = await newClient({ contact_name: 'Sucesor', phone: '0414-777 0001' })
    const conflict = await ctx.as(management.token, 'POST', `/clients/${client.id}/restore`)
    assert.equal(conflict.statusCode, 409)
    assert.equal(problemOf(conflict).code, 'phone_taken')
    assert.equal(problemOf(conflict).existing_id, successor.id)
    // A second live client with the phone is still refused.
    const duplicate = await ctx.as(management.token, 'POST', '/clients', { contact_name: 'Otro', phone: client.phone })
    assert.equal(duplicate.statusCode, 409)
    assert.equal(problemOf(duplicate).existing_id, successor.id)
  })

  it('restores a client with the leads trashed with it, not those trashed before; a lead of a trashed client waits for it', async () => {
    const client = await newClient({ contact_name: 'Vuelve Pronto', phone: '+584147770002' })
    const [kept, alsoKept, earlier] = [await newLead(client.id), await newLead(client.id), await newLead(client.id)]
    assert.equal((await ctx.as(management.token, 'DELETE', `/leads/${earlier.id}`)).statusCode, 204)
    const statsBefore = (await ctx.as(management.token, 'GET', '/leads/stats')).json()
    assert.equal((await ctx.as(management.token, 'DELETE', `/clients/${client.id}?cascade=true`)).statusCode, 204)

    const waiting = await ctx.as(management.token, 'POST', `/leads/${kept.id}/restore`)
    assert.equal(waiting.statusCode, 409)
    assert.equal(problemOf(waiting).code, 'client_trashed')

    const trash = await ctx.as(management.token, 'GET', '/trash?type=leads&limit=200')
    assert.equal(trash.statusCode, 200)
    const trashedLeads = trash.json().items as Array<{ id: number; deleted_at: string; deleted_by: number }>
    for (const lead of [kept, alsoKept, earlier]) assert.ok(trashedLeads.some((item) => item.id === lead.id))
    assert.equal(trashedLeads.find((item) => item.id === kept.id)?.deleted_by, management.id)
    const trashedClients = (await ctx.as(management.token, 'GET', '/trash?type=clients')).json().items
    assert.equal(trashedClients[0].id, client.id)

    const restored = await ctx.as(management.token, 'POST', `/clients/${client.id}/restore`)
    assert.equal(restored.statusCode, 200, restored.body)
    assert.equal(restored.json().phone, client.phone)
    const detail = (await ctx.as(management.token, 'GET', `/clients/${client.id}`)).json()
    assert.deepEqual(detail.leads.map((lead: { id: number }) => lead.id).sort(), [kept.id, alsoKept.id].sort())
    assert.equal((await ctx.as(management.token, 'GET', `/leads/${earlier.id}`)).statusCode, 404)
    assert.equal((await ctx.as(management.token, 'GET', '/leads/stats')).json().total, statsBefore.total)

    const restoreRows = await ctx.auditRows('clients', client.id)
    assert.deepEqual(
      restoreRows.map((row) => row.action),
      ['create', 'delete', 'restore'],
    )
    assert.deepEqual((await ctx.auditRows('leads', kept.id)).map((row) => row.action).slice(-2), ['delete', 'restore'])
    assert.equal(await eventsOf('client.restored', client.id), 1)
    assert.equal(await eventsOf('lead.restored', kept.id), 1)

    // Now the lead trashed on its own comes back by itself.
    const lead = await ctx.as(management.token, 'POST', `/leads/${earlier.id}/restore`)
    assert.equal(lead.statusCode, 200)
    assert.equal(lead.json().client.id, client.id)
    assert.equal((await ctx.as(management.token, 'POST', `/leads/${earlier.id}/restore`)).statusCode, 404)
    assert.equal((await ctx.as(management.token, 'POST', `/clients/${client.id}/restore`)).statusCode, 404)
  })

  it('purges a trashed client with its leads for good, with a purge audit row each; admin only', async () => {
    const client = await newClient({ contact_name: 'Se Va', phone: '+584147770003' })
    const lead = await newLead(client.id)
    assert.equal((await ctx.as(management.token, 'DELETE', `/clients/${client.id}?cascade=true`)).statusCode, 204)
    assert.equal((await ctx.as(management.token, 'DELETE', `/trash/clients/${client.id}`)).statusCode, 403)
    const purged = await ctx.as(ctx.adminToken, 'DELETE', `/trash/clients/${client.id}`)
    assert.equal(purged.statusCode, 204)
    assert.equal(
      await ctx.db.selectFrom('clients').select('id').where('id', '=', client.id).executeTakeFirst(),
      undefined,
    )
    assert.equal(await ctx.db.selectFrom('leads').select('id').where('id', '=', lead.id).executeTakeFirst(), undefined)
    const [clientRow] = (await ctx.auditRows('clients', client.id)).filter((row) => row.action === 'purge')
    assert.equal((clientRow?.new_values as { phone?: string } | undefined)?.phone, client.phone)
    assert.equal(clientRow?.username, 'admin')
    assert.equal((await ctx.auditRows('leads', lead.id)).at(-1)?.action, 'purge')
    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/clients/${client.id}/restore`)).statusCode, 404)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/clients/${client.id}`)).statusCode, 404)
    // A live row is not purged through the trash.
    const live = await newClient({ contact_name: 'Sigue Aquí', phone: '+584147770004' })
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/trash/clients/${live.id}`)).statusCode, 404)
  })

  it('purges by itself what has been in the trash longer than TRASH_RETENTION_DAYS', async () => {
    const old = await newClient({ contact_name: 'Antiguo', phone: '+584147770005' })
    const oldLead = await newLead(old.id)
    const recent = await newClient({ contact_name: 'Reciente', phone: '+584147770006' })
    const recentLead = await newLead(recent.id)
    for (const client of [old, recent]) {
      assert.equal((await ctx.as(management.token, 'DELETE', `/clients/${client.id}?cascade=true`)).statusCode, 204)
    }
    const age = async (client: { id: number }, days: number) => {
      for (const table of ['clients', 'leads'] as const) {
        const key = table === 'clients' ? sql.ref('id') : sql.ref('client_id')
        await sql`update ${sql.table(table)} set deleted_at = now() - make_interval(days => ${days})
          where ${key} = ${client.id}`.execute(ctx.db)
      }
    }
    await age(old, 31)
    await age(recent, 29)

    assert.deepEqual(await purgeExpiredTrash(ctx.db, systemActor(), 30), { leads: 1, clients: 1 })
    const left = await ctx.db.selectFrom('leads').select('id').where('id', 'in', [oldLead.id, recentLead.id]).execute()
    assert.deepEqual(
      left.map((row) => row.id),
      [recentLead.id],
    )
    const [row] = (await ctx.auditRows('clients', old.id)).filter((entry) => entry.action === 'purge')
    assert.equal(row?.username, 'system')
    await age(recent, 31)
    assert.deepEqual(await purgeExpiredTrash(ctx.db, systemActor(), 30), { leads: 1, clients: 1 })
  })

  it('lets admin and management list and restore, and nobody else', async () => {
    assert.equal((await ctx.as(seller.token, 'GET', '/trash?type=clients')).statusCode, 403)
    const bad = await ctx.as(management.token, 'GET', '/trash?type=users')
    assert.equal(bad.statusCode, 400)
    assert.equal(problemOf(bad).errors?.[0]?.field, 'type')
  })
})

function auth(user: TestUser) {
  return { authorization: `Bearer ${user.token}` }
}
