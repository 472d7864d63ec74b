import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'
import { type FakeGraphApi, startFakeGraphApi } from './helpers/graph-api.js'

const APP_SECRET = `app-secret-${randomBytes(8).toString('hex')}`
const HOUR = 3600

interface LeadBody {
  id: number
  status: string
  created_at: string
  status_changed_at: string
  first_response_at: string | null
  response_seconds: number | null
  response_business_seconds: number | null
}

describe('first responses', () => {
  let ctx: TestContext
  let graph: FakeGraphApi
  let seller: TestUser

  before(async () => {
    graph = await startFakeGraphApi()
    ctx = await startTestContext({
      WHATSAPP_VERIFY_TOKEN: 'verify',
      WHATSAPP_APP_SECRET: APP_SECRET,
      WHATSAPP_ACCESS_TOKEN: graph.accessToken,
      WHATSAPP_PHONE_NUMBER_ID: graph.phoneNumberId,
      WHATSAPP_GRAPH_URL: graph.url,
    })
    seller = await ctx.createUser('sales')
    // Monday to Friday 09:00–18:00 UTC (the defaults, in UTC).
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', { time_zone: 'UTC' })
    assert.equal(put.statusCode, 200, put.body)
  })
  after(async () => {
    await ctx?.close()
    await graph?.close()
  })

  const getLead = async (id: number): Promise<LeadBody> => {
    const response = await ctx.as(ctx.adminToken, 'GET', `/leads/${id}`)
    assert.equal(response.statusCode, 200, response.body)
    return response.json()
  }
  /** A new lead of the seller, in status new, created at `createdAt` when given. */
  const newLead = async (createdAt?: string): Promise<LeadBody> => {
    const client = await createClient(ctx)
    const lead = await createLead(ctx, { client_id: client.id }, seller.token)
    if (createdAt) await ctx.db.updateTable('leads').set({ created_at: createdAt }).where('id', '=', lead.id).execute()
    return getLead(lead.id)
  }
  const addActivity = async (leadId: number, body: Record<string, unknown>) => {
    const response = await ctx.as(seller.token, 'POST', `/leads/${leadId}/activities`, { body: 'Hecho', ...body })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { occurred_at: string }
  }
  const unanswered = (lead: LeadBody) =>
    assert.deepEqual(
      [lead.first_response_at, lead.response_seconds, lead.response_business_seconds],
      [null, null, null],
      `lead ${lead.id}`,
    )

  it('is set by the first call only, with its span in seconds and in open hours; a note does not count', async () => {
    // Created on Friday 4 December 2026 at 17:00 UTC.
    const lead = await newLead('2026-12-04T17:00:00Z')
    unanswered(lead)
    await addActivity(lead.id, { type: 'note' })
    unanswered(await getLead(lead.id))

    // Called on Monday at 10:00: 65 hours later, of which Friday's last hour and Monday's first were open.
    await addActivity(lead.id, { type: 'call', occurred_at: '2026-12-07T10:00:00Z' })
    const answered = await getLead(lead.id)
    assert.equal(answered.first_response_at, '2026-12-07T10:00:00.000Z')
    assert.equal(answered.response_seconds, 65 * HOUR)
    assert.equal(answered.response_business_seconds, 2 * HOUR)

    // A later call, an earlier-dated email logged afterwards, and the move out of new change nothing.
    await addActivity(lead.id, { type: 'call', occurred_at: '2026-12-07T12:00:00Z' })
    await addActivity(lead.id, { type: 'email', occurred_at: '2026-12-05T12:00:00Z' })
    const moved = await ctx.as(seller.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })
    assert.equal(moved.statusCode, 200, moved.body)
    assert.equal(moved.json().first_response_at, '2026-12-07T10:00:00.000Z')
    const later = await getLead(lead.id)
    assert.deepEqual(
      [later.first_response_at, later.response_seconds, later.response_business_seconds],
      [answered.first_response_at, 65 * HOUR, 2 * HOUR],
    )
  })

  it('is set by an email or a meeting, and not by a contact dated before the lead existed', async () => {
    for (const type of ['email', 'meeting']) {
      const lead = await newLead('2026-12-07T09:00:00Z')
      await addActivity(lead.id, { type, occurred_at: '2026-12-07T09:30:00Z' })
      const answered = await getLead(lead.id)
      assert.equal(answered.first_response_at, '2026-12-07T09:30:00.000Z', type)
      assert.equal(answered.response_seconds, 1800)
      assert.equal(answered.response_business_seconds, 1800)
    }
    const lead = await newLead('2026-12-07T09:00:00Z')
    await addActivity(lead.id, { type: 'call', occurred_at: '2026-12-06T09:00:00Z' })
    unanswered(await getLead(lead.id))
  })

  it('is now at the latest for a contact dated in the future', async () => {
    const lead = await newLead()
    const before = Date.now()
    await addActivity(lead.id, { type: 'meeting', occurred_at: '2099-01-01T10:00:00Z' })
    const answered = await getLead(lead.id)
    const at = Date.parse(answered.first_response_at as string)
    assert.ok(at >= Date.parse(lead.created_at) && at <= Date.now() && at >= before - 1000, String(at))
  })

  it('is set by the move out of new, in the same answer, on the single route and in bulk', async () => {
    const single = await newLead()
    const moved = await ctx.as(seller.token, 'PATCH', `/leads/${single.id}/status`, { status: 'quoted' })
    assert.equal(moved.statusCode, 200, moved.body)
    const body = moved.json() as LeadBody
    assert.equal(body.first_response_at, body.status_changed_at)
    assert.equal(typeof body.response_seconds, 'number')
    assert.deepEqual(await getLead(single.id), body)

    const [first, second] = [await newLead(), await newLead()] as [LeadBody, LeadBody]
    const bulk = await ctx.as(ctx.adminToken, 'POST', '/leads/bulk', {
      action: 'status',
      status: 'contacted',
      ids: [first.id, second.id],
    })
    assert.equal(bulk.statusCode, 200, bulk.body)
    for (const lead of [await getLead(first.id), await getLead(second.id)]) {
      assert.equal(lead.first_response_at, lead.status_changed_at)
    }
    // A move between other statuses is no response: only leaving new is.
    const assignedOnly = await newLead()
    const assigned = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${assignedOnly.id}/assign`, {
      assigned_to: null,
    })
    assert.equal(assigned.statusCode, 200, assigned.body)
    unanswered(await getLead(assignedOnly.id))
  })

  it('is set by an import that moves a lead out of new, not by one that creates a lead past new', async () => {
    const client = await createClient(ctx)
    const lead = await createLead(ctx, { client_id: client.id, channel: 'manual' })
    const upload = (file: string, mode: string) =>
      ctx.inject({
        method: 'POST',
        url: `/leads/import?mode=${mode}`,
        headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
        payload: file,
      })
    const moved = await upload(`phone,channel,status\n${client.phone},manual,contacted\n`, 'upsert')
    assert.equal(moved.statusCode, 200, moved.body)
    assert.equal(moved.json().updated, 1)
    const answered = await getLead(lead.id)
    assert.equal(answered.status, 'contacted')
    assert.equal(answered.first_response_at, answered.status_changed_at)

    const other = await createClient(ctx)
    const created = await upload(`phone,channel,status\n${other.phone},web,quoted\n`, 'create')
    assert.equal(created.statusCode, 200, created.body)
    const [imported] = (await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${other.id}`)).json().items
    unanswered(imported)
  })

  it('is set by an outbound WhatsApp message, not by the inbound one that opened the lead', async () => {
    const waId = `58424${String(Date.now()).slice(-7)}`
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '102290129340398',
          changes: [
            {
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: '15550783881', phone_number_id: graph.phoneNumberId },
                contacts: [{ profile: { name: 'Marta' }, wa_id: waId }],
                messages: [
                  {
                    from: waId,
                    id: `wamid.${randomBytes(12).toString('hex')}`,
                    timestamp: String(Math.floor(Date.now() / 1000)),
                    type: 'text',
                    text: { body: 'Hola, ¿precios?' },
                  },
                ],
              },
            },
          ],
        },
      ],
    })
    const delivered = await ctx.inject({
      method: 'POST',
      url: '/integrations/whatsapp/webhook',
      headers: {
        'content-type': 'application/json',
        'x-hub-signature-256': `sha256=${createHmac('sha256', APP_SECRET).update(body).digest('hex')}`,
      },
      payload: body,
    })
    assert.equal(delivered.statusCode, 200, delivered.body)
    const client = (await ctx.as(ctx.adminToken, 'GET', `/clients/by-phone/${encodeURIComponent(`+${waId}`)}`)).json()
    const [lead] = (await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${client.id}`)).json().items as LeadBody[]
    unanswered(lead as LeadBody)

    const sent = await ctx.as(ctx.adminToken, 'POST', `/leads/${lead?.id}/whatsapp`, { text: 'Hola Marta' })
    assert.equal(sent.statusCode, 201, sent.body)
    const answered = await getLead(lead?.id as number)
    assert.equal(answered.first_response_at, new Date(sent.json().occurred_at).toISOString())
    assert.equal(answered.status, 'new')
  })
})
