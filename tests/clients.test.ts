import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

const README_CLIENT = {
  client_type: 'natural',
  contact_name: 'Juan Pérez',
  phone: '+584123456789',
  email: 'juan@example.com',
  address: 'Calle Principal 123',
}

async function countClients(ctx: TestContext): Promise<number> {
  const row = await ctx.db.selectFrom('clients').select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow()
  return Number(row.count)
}

describe('clients', () => {
  let ctx: TestContext
  let sales: TestUser
  let management: TestUser
  let juanId: number

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
  })
  after(() => ctx?.close())

  const create = (body: unknown, token = sales.token) => ctx.as(token, 'POST', '/clients', body)

  it("creates the README's client: 201, E.164 phone, Location, one audit row", async () => {
    const response = await ctx.inject({
      method: 'POST',
      url: '/clients',
      headers: { authorization: `Bearer ${sales.token}`, 'content-type': 'application/json' },
      payload: JSON.stringify(README_CLIENT),
    })
    assert.equal(response.statusCode, 201, response.body)
    const client = response.json()
    juanId = client.id
    assert.equal(client.phone, '+584123456789')
    assert.equal(client.contact_name, 'Juan Pérez')
    assert.equal(client.company_name, null)
    assert.equal(client.created_by, sales.id)
    assert.equal(response.headers.location, `/clients/${client.id}`)
    assert.equal(client.search_text, undefined)
    const rows = await ctx.auditRows('clients', client.id)
    assert.equal(rows.length, 1)
    assert.equal(rows[0]?.action, 'create')
    assert.equal(rows[0]?.user_id, sales.id)
    assert.equal(rows[0]?.new_values?.phone, '+584123456789')
    assert.equal(rows[0]?.new_values?.search_text, undefined)
  })

  it('refuses the same number however it is written: 409 phone_taken with existing_id', async () => {
    for (const phone of ['0412-3456789', '+58 412 345 6789', '00584123456789', '(0412) 345.67.89']) {
      const response = await create({ contact_name: 'Someone Else', phone })
      assert.equal(response.statusCode, 409, phone)
      const problem = problemOf(response)
      assert.equal(problem.code, 'phone_taken')
      assert.equal(problem.existing_id, juanId)
      assert.match(problem.detail, /\+584123456789/)
    }
    assert.equal(await countClients(ctx), 1)
    assert.equal((await ctx.auditRows('clients')).length, 1)
  })

  it('finds the client by phone in any written form', async () => {
    for (const phone of ['04123456789', '%2B584123456789', '0412-3456789', '%2B58%20412%20345%206789']) {
      const response = await ctx.as(sales.token, 'GET', `/clients/by-phone/${phone}`)
      assert.equal(response.statusCode, 200, phone)
      assert.equal(response.json().id, juanId)
    }
    const unknown = await ctx.as(sales.token, 'GET', '/clients/by-phone/04149876543')
    assert.equal(unknown.statusCode, 404)
    const garbage = await ctx.as(sales.token, 'GET', '/clients/by-phone/not-a-phone')
    assert.equal(garbage.statusCode, 400)
    assert.equal(problemOf(garbage).errors?.[0]?.field, 'phone')
  })

  it('refuses invalid phones with a 400 that says why', async () => {
    const cases = {
      '+1 555 555 5555': /not a valid number/, // possible, but in no range in use
      '+58 412 000': /too short/,
      '0412-ABCDEFG': /letters/,
      '': /empty/,
      '+999 123456789': /country code/,
    }
    for (const [phone, reason] of Object.entries(cases)) {
      const response = await create({ contact_name: 'Bad Phone', phone })
      assert.equal(response.statusCode, 400, phone)
      const errors = problemOf(response).errors ?? []
      assert.equal(errors.length, 1)
      assert.equal(errors[0]?.field, 'phone')
      assert.match(errors[0]?.message ?? '', reason, phone)
    }
    assert.equal(await countClients(ctx), 1)
  })

  it('requires company_name for juridical clients and stores emails lower-case', async () => {
    const missing = await create({ client_type: 'juridical', contact_name: 'Ana Rojas', phone: '+584241112233' })
    assert.equal(missing.statusCode, 400)
    assert.deepEqual(
      problemOf(missing).errors?.map((error) => error.field),
      ['company_name'],
    )
    const company = await create({
      client_type: 'juridical',
      contact_name: '  Ana Rojas ',
      company_name: 'Inversiones Ñandú C.A.',
      phone: '+584241112233',
      email: 'Ana.Rojas@Example.COM',
    })
    assert.equal(company.statusCode, 201)
    assert.equal(company.json().email, 'ana.rojas@example.com')
    assert.equal(company.json().contact_name, 'Ana Rojas')
    const bad = await create({ contact_name: '   ', phone: '+584241112234', email: 'nope', client_type: 'person' })
    assert.equal(bad.statusCode, 400)
    assert.deepEqual(
      problemOf(bad)
        .errors?.map((error) => error.field)
        .sort(),
      ['client_type', 'contact_name', 'email'],
    )
  })

  it('lets exactly one of twenty concurrent creates of one number win', async () => {
    const phone = '+584161234567'
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) => create({ contact_name: `Racer ${index}`, phone: `0416-${1234567}` })),
    )
    const statuses = responses.map((response) => response.statusCode).sort()
    assert.deepEqual(statuses, [201, ...Array(19).fill(409)])
    const winner = responses.find((response) => response.statusCode === 201)?.json()
    for (const response of responses.filter((r) => r.statusCode === 409)) {
      assert.equal(problemOf(response).existing_id, winner.id)
    }
    const rows = await ctx.db.selectFrom('clients').select('id').where('phone', '=', phone).execute()
    assert.equal(rows.length, 1)
    assert.equal((await ctx.auditRows('clients', winner.id)).length, 1)
  })

  it('finds Juan Pérez by perez, PEREZ, pér and Juan Peres, best match first', async () => {
    for (const [name, phone] of [
      ['Pedro Perezoso', '+584141000001'],
      ['María Gómez', '+584141000002'],
      ['Juana Pereira', '+584141000003'],
    ]) {
      assert.equal((await create({ contact_name: name, phone })).statusCode, 201)
    }
    for (const q of ['perez', 'PEREZ', 'pér', 'Juan Peres', 'juan@example', '412345']) {
      const response = await ctx.as(sales.token, 'GET', `/clients/search?q=${encodeURIComponent(q)}`)
      assert.equal(response.statusCode, 200, q)
      const names = response.json().items.map((client: { contact_name: string }) => client.contact_name)
      assert.equal(names[0], 'Juan Pérez', `${q}: ${names.join(', ')}`)
      assert.ok(!names.includes('María Gómez'), q)
    }
    const company = await ctx.as(sales.token, 'GET', '/clients/search?q=nandu')
    assert.deepEqual(
      company.json().items.map((client: { contact_name: string }) => client.contact_name),
      ['Ana Rojas'],
    )
    const none = await ctx.as(sales.token, 'GET', '/clients/search?q=zzzzqqq')
    assert.equal(none.json().total, 0)
    assert.equal((await ctx.as(sales.token, 'GET', '/clients/search')).statusCode, 400)
  })

  it('searches what a client is now: renamed, renumbered, trashed and restored', async () => {
    const names = async (q: string) => {
      const response = await ctx.as(sales.token, 'GET', `/clients/search?q=${encodeURIComponent(q)}`)
      assert.equal(response.statusCode, 200, response.body)
      return response.json().items.map((client: { contact_name: string }) => client.contact_name)
    }
    const created = await create({ contact_name: 'Zoila Quintero', phone: '+584141000031' })
    assert.equal(created.statusCode, 201, created.body)
    const id = created.json().id
    assert.deepEqual(await names('quintero'), ['Zoila Quintero'])

    const renamed = await ctx.as(sales.token, 'PATCH', `/clients/${id}`, {
      contact_name: 'Zoila Urdaneta',
      phone: '+584141000032',
    })
    assert.equal(renamed.statusCode, 200, renamed.body)
    assert.deepEqual(await names('quintero'), [])
    assert.deepEqual(await names('urdaneta'), ['Zoila Urdaneta'])
    assert.equal((await names('4141000032'))[0], 'Zoila Urdaneta')

    assert.equal((await ctx.as(management.token, 'DELETE', `/clients/${id}`)).statusCode, 204)
    assert.deepEqual(await names('urdaneta'), [])
    assert.equal((await ctx.as(management.token, 'POST', `/clients/${id}/restore`)).statusCode, 200)
    assert.deepEqual(await names('urdaneta'), ['Zoila Urdaneta'])
  })

  it('reads %, _ and their full-width forms in q as themselves, never as wildcards', async () => {
    const client = await create({ contact_name: 'Rebajas 50% Total', phone: '+584141000009' })
    const lead = await ctx.as(ctx.adminToken, 'POST', '/leads', {
      client_id: client.json().id,
      channel: 'manual',
      sales_notes: 'Nota sin comodines',
    })
    assert.equal(lead.statusCode, 201)
    for (const q of ['％％％％', '＿＿＿＿', '%%%%', '____', '\\\\']) {
      for (const path of ['/clients/search', '/clients', '/leads']) {
        const response = await ctx.as(ctx.adminToken, 'GET', `${path}?q=${encodeURIComponent(q)}`)
        assert.equal(response.statusCode, 200, `${path} ${q}`)
        assert.equal(response.json().total, 0, `${path}?q=${q} matches nothing`)
      }
    }
    const literal = await ctx.as(ctx.adminToken, 'GET', `/clients/search?q=${encodeURIComponent('50％')}`)
    assert.deepEqual(
      literal.json().items.map((item: { contact_name: string }) => item.contact_name),
      ['Rebajas 50% Total'],
      'a full-width ％ still finds a literal %',
    )
  })

  it('lists with filters, q, a whitelisted sort and a correct total', async () => {
    const all = await ctx.as(sales.token, 'GET', '/clients?limit=200')
    assert.equal(all.statusCode, 200)
    const total = await countClients(ctx)
    assert.equal(all.json().total, total)
    assert.equal(all.json().items.length, total)
    assert.equal(all.json().limit, 200)

    const juridical = await ctx.as(sales.token, 'GET', '/clients?client_type=juridical')
    assert.deepEqual(
      juridical.json().items.map((client: { contact_name: string }) => client.contact_name),
      ['Ana Rojas'],
    )
    const byName = await ctx.as(sales.token, 'GET', '/clients?sort=contact_name&limit=2&offset=1')
    const sortedNames = all
      .json()
      .items.map((client: { contact_name: string }) => client.contact_name)
      .sort((a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0))
    assert.deepEqual(
      byName.json().items.map((client: { contact_name: string }) => client.contact_name),
      sortedNames.slice(1, 3),
    )
    assert.equal(byName.json().total, total)
    const newest = await ctx.as(sales.token, 'GET', '/clients?sort=-created_at&limit=1')
    assert.equal(newest.json().items[0].id, Math.max(...all.json().items.map((client: { id: number }) => client.id)))
    const withQ = await ctx.as(sales.token, 'GET', '/clients?q=perez&sort=contact_name')
    const matched = withQ.json().items.map((client: { contact_name: string }) => client.contact_name)
    assert.deepEqual(matched, [...matched].sort(), 'q keeps the requested sort')
    assert.ok(matched.includes('Juan Pérez') && matched.includes('Pedro Perezoso'), matched.join(', '))
    assert.ok(!matched.includes('María Gómez'))
    assert.equal(withQ.json().total, matched.length)
    const today = new Date().toISOString().slice(0, 10)
    assert.equal(
      (await ctx.as(sales.token, 'GET', `/clients?created_from=${today}&created_to=${today}`)).json().total,
      total,
    )
    assert.equal((await ctx.as(sales.token, 'GET', '/clients?created_to=2000-01-01')).json().total, 0)

    for (const query of [
      'sort=phone',
      'sort=-search_text',
      'limit=201',
      'offset=-1',
      'created_from=yesterday',
      'client_type=robot',
    ]) {
      const response = await ctx.as(sales.token, 'GET', `/clients?${query}`)
      assert.equal(response.statusCode, 400, query)
      assert.equal(problemOf(response).errors?.[0]?.field, query.split('=')[0])
    }
  })

  it('updates with one audit row of the changed fields; a no-op PATCH writes nothing', async () => {
    const before = (await ctx.as(sales.token, 'GET', `/clients/${juanId}`)).json()
    assert.deepEqual(before.leads, [])
    const noop = await ctx.as(sales.token, 'PATCH', `/clients/${juanId}`, {
      contact_name: 'Juan Pérez',
      phone: '0412-3456789',
      email: 'JUAN@example.com',
    })
    assert.equal(noop.statusCode, 200)
    assert.equal(noop.json().updated_at, before.updated_at)
    assert.equal((await ctx.auditRows('clients', juanId)).length, 1)

    const patch = await ctx.as(management.token, 'PATCH', `/clients/${juanId}`, {
      address: 'Avenida Bolívar 45',
      phone: '+58 412 345 6789',
    })
    assert.equal(patch.statusCode, 200)
    assert.equal(patch.json().address, 'Avenida Bolívar 45')
    assert.notEqual(patch.json().updated_at, before.updated_at)
    const rows = await ctx.auditRows('clients', juanId)
    assert.equal(rows.length, 2)
    assert.deepEqual(rows[1]?.old_values, { address: 'Calle Principal 123' })
    assert.deepEqual(rows[1]?.new_values, { address: 'Avenida Bolívar 45' })
    assert.equal(rows[1]?.user_id, management.id)

    const history = await ctx.as(sales.token, 'GET', `/clients/${juanId}/history`)
    assert.equal(history.statusCode, 200)
    assert.deepEqual(
      history.json().items.map((row: { action: string }) => row.action),
      ['update', 'create'],
    )
  })

  it('refuses a PATCH to a taken phone with 409 and changes nothing', async () => {
    const other = await create({ contact_name: 'Carlos Díaz', phone: '+584261234567' })
    assert.equal(other.statusCode, 201)
    const response = await ctx.as(sales.token, 'PATCH', `/clients/${other.json().id}`, {
      phone: '0412 3456789',
      address: 'Nowhere',
    })
    assert.equal(response.statusCode, 409)
    assert.equal(problemOf(response).code, 'phone_taken')
    assert.equal(problemOf(response).existing_id, juanId)
    const after = (await ctx.as(sales.token, 'GET', `/clients/${other.json().id}`)).json()
    assert.equal(after.phone, '+584261234567')
    assert.equal(after.address, null)
    assert.equal((await ctx.auditRows('clients', other.json().id)).length, 1)
    const toJuridical = await ctx.as(sales.token, 'PATCH', `/clients/${other.json().id}`, { client_type: 'juridical' })
    assert.equal(toJuridical.statusCode, 400)
    assert.equal(problemOf(toJuridical).errors?.[0]?.field, 'company_name')
  })

  it('lets admin and management delete, not sales; anonymous is 401 everywhere', async () => {
    const doomed = (await create({ contact_name: 'To Delete', phone: '+584269998877' })).json()
    const refused = await ctx.as(sales.token, 'DELETE', `/clients/${doomed.id}`)
    assert.equal(refused.statusCode, 403)
    const deleted = await ctx.as(management.token, 'DELETE', `/clients/${doomed.id}`)
    assert.equal(deleted.statusCode, 204)
    const rows = await ctx.auditRows('clients', doomed.id)
    assert.deepEqual(
      rows.map((row) => row.action),
      ['create', 'delete'],
    )
    assert.equal(rows[1]?.old_values?.contact_name, 'To Delete')
    assert.equal((await ctx.as(sales.token, 'GET', `/clients/${doomed.id}`)).statusCode, 404)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/clients/${doomed.id}`)).statusCode, 404)

    for (const [method, url] of [
      ['GET', '/clients'],
      ['POST', '/clients'],
      ['GET', '/clients/search?q=juan'],
      ['GET', '/clients/by-phone/04123456789'],
      ['GET', `/clients/${juanId}`],
      ['PATCH', `/clients/${juanId}`],
      ['DELETE', `/clients/${juanId}`],
      ['GET', `/clients/${juanId}/history`],
    ] as const) {
      const response = await ctx.as(undefined, method, url, method === 'GET' || method === 'DELETE' ? undefined : {})
      assert.equal(response.statusCode, 401, `${method} ${url}`)
    }
  })
})
