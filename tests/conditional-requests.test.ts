import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { problemOf, startTestContext, type TestContext } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

describe('conditional requests: ETag, If-Match, If-None-Match', () => {
  let ctx: TestContext

  /** A request as the admin, with extra headers. */
  const send = (
    method: 'GET' | 'HEAD' | 'PATCH' | 'DELETE',
    url: string,
    headers: Record<string, string>,
    body?: unknown,
  ) =>
    ctx.inject({
      method,
      url,
      headers: { authorization: `Bearer ${ctx.adminToken}`, ...headers },
      ...(body !== undefined && { payload: body as never }),
    })
  const etagOf = (response: LightMyRequestResponse) => {
    assert.equal(response.statusCode, 200, response.body)
    const etag = response.headers.etag
    assert.match(String(etag), /^"[A-Za-z0-9_-]+"$/)
    return String(etag)
  }
  const newClient = async (name = 'Carla Díaz') => (await createClient(ctx, { contact_name: name })).id
  const newLead = async (clientId: number) => (await createLead(ctx, { client_id: clientId })).id

  before(async () => {
    ctx = await startTestContext()
  })
  after(() => ctx.close())

  it('two editors: the second PATCH with the first ETag is 412 and nothing changes', async () => {
    const leadId = await newLead(await newClient())
    const etag = etagOf(await send('GET', `/leads/${leadId}`, {}))

    const first = await send('PATCH', `/leads/${leadId}`, { 'if-match': etag }, { sales_notes: 'first editor' })
    assert.equal(first.statusCode, 200, first.body)
    const newEtag = String(first.headers.etag)
    assert.notEqual(newEtag, etag)
    assert.equal(newEtag, etagOf(await send('GET', `/leads/${leadId}`, {})), 'the PATCH answers the new ETag')

    const auditBefore = (await ctx.auditRows('leads', leadId)).length
    const second = await send('PATCH', `/leads/${leadId}`, { 'if-match': etag }, { sales_notes: 'second editor' })
    assert.equal(second.statusCode, 412, second.body)
    assert.match(String(second.headers['content-type']), /^application\/problem\+json/)
    assert.equal(problemOf(second).code, 'precondition_failed')
    const lead = (await send('GET', `/leads/${leadId}`, {})).json()
    assert.equal(lead.sales_notes, 'first editor')
    assert.equal((await ctx.auditRows('leads', leadId)).length, auditBefore, 'no audit row for the refused change')

    // With the current tag, and with *, the change is made.
    const third = await send('PATCH', `/leads/${leadId}`, { 'if-match': newEtag }, { sales_notes: 'third' })
    assert.equal(third.statusCode, 200, third.body)
    const star = await send('PATCH', `/leads/${leadId}`, { 'if-match': '*' }, { sales_notes: 'fourth' })
    assert.equal(star.statusCode, 200, star.body)
    // A weak tag never matches If-Match (strong comparison), even with the right opaque value.
    const weak = await send('PATCH', `/leads/${leadId}`, { 'if-match': `W/${star.headers.etag}` }, { sales_notes: 'x' })
    assert.equal(weak.statusCode, 412)
  })

  it('two editors racing with the same ETag: exactly one wins, the other is 412', async () => {
    const leadId = await newLead(await newClient())
    const etag = etagOf(await send('GET', `/leads/${leadId}`, {}))
    const answers = await Promise.all(
      ['racer one', 'racer two'].map((notes) =>
        send('PATCH', `/leads/${leadId}`, { 'if-match': etag }, { sales_notes: notes }),
      ),
    )
    assert.deepEqual(answers.map((answer) => answer.statusCode).sort(), [200, 412])
    const winner = answers.find((answer) => answer.statusCode === 200)?.json()
    assert.equal((await send('GET', `/leads/${leadId}`, {})).json().sales_notes, winner.sales_notes)
    assert.equal((await ctx.auditRows('leads', leadId)).filter((row) => row.action === 'update').length, 1)
  })

  it('If-None-Match gives 304 while unchanged, 200 with the new ETag after a change', async () => {
    const clientId = await newClient()
    const leadId = await newLead(clientId)
    for (const path of [`/leads/${leadId}`, `/clients/${clientId}`, '/users/1']) {
      const etag = etagOf(await send('GET', path, {}))
      const again = await send('GET', path, {})
      assert.equal(again.headers.etag, etag, `${path}: the same representation, the same tag`)
      for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
        const notModified = await send('GET', path, { 'if-none-match': ifNoneMatch })
        assert.equal(notModified.statusCode, 304, `${path} ${ifNoneMatch}`)
        assert.equal(notModified.body, '')
        assert.equal(notModified.headers.etag, etag)
      }
      const head = await send('HEAD', path, { 'if-none-match': etag })
      assert.equal(head.statusCode, 304, `HEAD ${path}`)
      assert.equal(head.body, '')
      assert.equal(head.headers.etag, etag)
      assert.equal((await send('HEAD', path, {})).headers.etag, etag, `HEAD ${path} answers the GET's tag`)
      const other = await send('GET', path, { 'if-none-match': '"something-else"' })
      assert.equal(other.statusCode, 200)
    }
    const etag = etagOf(await send('GET', `/leads/${leadId}`, {}))
    await send('PATCH', `/leads/${leadId}`, {}, { channel: 'whatsapp' })
    const changed = await send('GET', `/leads/${leadId}`, { 'if-none-match': etag })
    assert.equal(changed.statusCode, 200)
    assert.notEqual(changed.headers.etag, etag)
  })

  it("a lead's ETag follows its embedded client's name, and nothing it does not show", async () => {
    const clientId = await newClient('Pedro Gil')
    const leadId = await newLead(clientId)
    const before = etagOf(await send('GET', `/leads/${leadId}`, {}))
    // A field of the client the lead does not show: the lead's tag stays.
    assert.equal((await send('PATCH', `/clients/${clientId}`, {}, { address: 'Av. Bolívar 1' })).statusCode, 200)
    assert.equal(etagOf(await send('GET', `/leads/${leadId}`, {})), before)
    // The embedded client name: the lead's tag moves, and an If-Match with the old one is refused.
    assert.equal((await send('PATCH', `/clients/${clientId}`, {}, { contact_name: 'Pedro Gil Rojas' })).statusCode, 200)
    const after = etagOf(await send('GET', `/leads/${leadId}`, {}))
    assert.notEqual(after, before)
    const stale = await send('PATCH', `/leads/${leadId}/status`, { 'if-match': before }, { status: 'contacted' })
    assert.equal(stale.statusCode, 412)
  })

  it('a status change or an assignment with a stale If-Match is 412 and changes nothing', async () => {
    const leadId = await newLead(await newClient())
    const stale = etagOf(await send('GET', `/leads/${leadId}`, {}))
    const moved = await send('PATCH', `/leads/${leadId}/status`, { 'if-match': stale }, { status: 'contacted' })
    assert.equal(moved.statusCode, 200, moved.body)

    const again = await send('PATCH', `/leads/${leadId}/status`, { 'if-match': stale }, { status: 'quoted' })
    assert.equal(again.statusCode, 412, again.body)
    const assign = await send('PATCH', `/leads/${leadId}/assign`, { 'if-match': stale }, { assigned_to: 1 })
    assert.equal(assign.statusCode, 412, assign.body)
    const remove = await send('DELETE', `/leads/${leadId}`, { 'if-match': stale })
    assert.equal(remove.statusCode, 412, remove.body)
    const lead = (await send('GET', `/leads/${leadId}`, {})).json()
    assert.equal(lead.status, 'contacted')
    assert.equal(lead.assigned_to, null)

    const current = etagOf(await send('GET', `/leads/${leadId}`, {}))
    assert.equal((await send('DELETE', `/leads/${leadId}`, { 'if-match': current })).statusCode, 204)
  })

  it('clients and users: stale If-Match on PATCH and DELETE is 412, the current one works', async () => {
    const clientId = await newClient()
    const clientTag = etagOf(await send('GET', `/clients/${clientId}`, {}))
    const renamed = await send('PATCH', `/clients/${clientId}`, { 'if-match': clientTag }, { contact_name: 'Renamed' })
    assert.equal(renamed.statusCode, 200, renamed.body)
    assert.equal(renamed.headers.etag, etagOf(await send('GET', `/clients/${clientId}`, {})))
    const stalePatch = await send('PATCH', `/clients/${clientId}`, { 'if-match': clientTag }, { contact_name: 'Lost' })
    assert.equal(stalePatch.statusCode, 412)
    assert.equal((await send('DELETE', `/clients/${clientId}`, { 'if-match': clientTag })).statusCode, 412)
    assert.equal((await send('GET', `/clients/${clientId}`, {})).json().contact_name, 'Renamed')
    // A new lead of the client is part of what GET /clients/{id} shows: the client's tag moves.
    const withoutLead = etagOf(await send('GET', `/clients/${clientId}`, {}))
    const leadId = await newLead(clientId)
    assert.notEqual(etagOf(await send('GET', `/clients/${clientId}`, {})), withoutLead)
    await send('DELETE', `/leads/${leadId}`, {})
    assert.equal(etagOf(await send('GET', `/clients/${clientId}`, {})), withoutLead)
    assert.equal((await send('DELETE', `/clients/${clientId}`, { 'if-match': withoutLead })).statusCode, 204)

    const user = await ctx.createUser('sales')
    const userTag = etagOf(await send('GET', `/users/${user.id}`, {}))
    const named = await send('PATCH', `/users/${user.id}`, { 'if-match': userTag }, { full_name: 'Sofía Marín' })
    assert.equal(named.statusCode, 200, named.body)
    assert.equal(named.headers.etag, etagOf(await send('GET', `/users/${user.id}`, {})))
    assert.equal((await send('PATCH', `/users/${user.id}`, { 'if-match': userTag }, { role: 'admin' })).statusCode, 412)
    assert.equal((await send('DELETE', `/users/${user.id}`, { 'if-match': userTag })).statusCode, 412)
    assert.equal((await send('GET', `/users/${user.id}`, {})).json().role, 'sales')
    assert.equal(
      (await send('DELETE', `/users/${user.id}`, { 'if-match': String(named.headers.etag) })).statusCode,
      204,
    )
  })

  it('a missing resource is 404 whatever If-Match says', async () => {
    const response = await send('PATCH', '/leads/999999', { 'if-match': '*' }, { sales_notes: 'x' })
    assert.equal(response.statusCode, 404)
  })

  it('the OpenAPI document names the conditional headers and answers', async () => {
    const document = (await ctx.inject({ method: 'GET', url: '/openapi.json' })).json()
    const getLead = document.paths['/leads/{id}'].get
    assert.ok(getLead.parameters.some((parameter: { name: string; in: string }) => parameter.name === 'if-none-match'))
    assert.ok(getLead.responses['304'])
    assert.ok(getLead.responses['200'].headers.etag)
    for (const [path, method] of [
      ['/leads/{id}', 'patch'],
      ['/leads/{id}/status', 'patch'],
      ['/leads/{id}/assign', 'patch'],
      ['/leads/{id}', 'delete'],
      ['/clients/{id}', 'patch'],
      ['/clients/{id}', 'delete'],
      ['/users/{id}', 'patch'],
      ['/users/{id}', 'delete'],
    ] as const) {
      const operation = document.paths[path][method]
      assert.ok(
        operation.parameters.some((parameter: { name: string; in: string }) => parameter.name === 'if-match'),
        `${method} ${path}`,
      )
      assert.equal(
        operation.responses['412'].content['application/problem+json'].schema.$ref,
        '#/components/schemas/Problem',
      )
    }
  })
})
