import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

interface Hit {
  type: 'client' | 'lead'
  id: number
  title: string
  snippet: string
  score: number
}

describe('full-text search', () => {
  let ctx: TestContext
  let sales: TestUser
  let otherSales: TestUser
  let perezId: number
  let quotedLeadId: number
  let scriptLeadId: number
  let othersLeadId: number

  const search = async (token: string, query: string) => {
    const response = await ctx.as(token, 'GET', `/search?${query}`)
    assert.equal(response.statusCode, 200, response.body)
    return response.json() as { items: Hit[]; total: number; total_exact: boolean; next_cursor: string | null }
  }
  const ids = (hits: Hit[], type: Hit['type']) => hits.filter((hit) => hit.type === type).map((hit) => hit.id)

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    otherSales = await ctx.createUser('sales')
    const client = async (body: Record<string, unknown>) => {
      const response = await ctx.as(ctx.adminToken, 'POST', '/clients', body)
      assert.equal(response.statusCode, 201, response.body)
      return response.json().id as number
    }
    const lead = async (body: Record<string, unknown>) => {
      const response = await ctx.as(ctx.adminToken, 'POST', '/leads', { channel: 'web', ...body })
      assert.equal(response.statusCode, 201, response.body)
      return response.json().id as number
    }
    perezId = await client({ contact_name: 'Juan Pérez', phone: '+584123456789', email: 'juan.perez@example.com' })
    const munoz = await client({
      client_type: 'juridical',
      contact_name: 'Ana Muñoz',
      company_name: 'Distribuidora Andina',
      phone: '+584241112233',
    })
    quotedLeadId = await lead({
      client_id: munoz,
      sales_notes: 'Envié las cotizaciones por correo',
      assigned_to: sales.id,
    })
    scriptLeadId = await lead({
      client_id: perezId,
      admin_notes: 'Pidió presupuesto <script>alert(1)</script> & "más"',
      assigned_to: sales.id,
    })
    othersLeadId = await lead({ client_id: perezId, sales_notes: 'Cotización aprobada', assigned_to: otherSales.id })
  })

  after(() => ctx?.close())

  it('finds a note by a Spanish stem typed without accents, with the word highlighted', async () => {
    const page = await search(ctx.adminToken, 'q=cotizacion')
    assert.deepEqual(ids(page.items, 'lead').sort(), [quotedLeadId, othersLeadId].sort())
    const hit = page.items.find((item) => item.id === quotedLeadId)
    assert.equal(hit?.type, 'lead')
    assert.equal(hit?.title, 'Ana Muñoz · Distribuidora Andina')
    assert.equal(hit?.snippet, 'Envié las <mark>cotizaciones</mark> por correo')
    assert.ok((hit?.score ?? 0) > 0)
    // With its accent, as the singular, and as the start of a word.
    for (const q of ['cotización', 'COTIZACIONES', 'cotiz', 'envie%20cotizacion']) {
      assert.ok(ids((await search(ctx.adminToken, `q=${q}`)).items, 'lead').includes(quotedLeadId), q)
    }
  })

  it('finds clients by name, company, email and phone, case and accents aside', async () => {
    const perez = await search(ctx.adminToken, 'q=perez&types=clients')
    assert.deepEqual(ids(perez.items, 'client'), [perezId])
    assert.equal(perez.items[0]?.snippet, 'Juan <mark>Pérez</mark> · juan.perez@example.com · +584123456789')
    assert.deepEqual(ids((await search(ctx.adminToken, 'q=munoz')).items, 'client').length, 1)
    assert.deepEqual(ids((await search(ctx.adminToken, 'q=andina')).items, 'client').length, 1)
    assert.deepEqual(ids((await search(ctx.adminToken, 'q=juan.perez%40example.com')).items, 'client'), [perezId])
    // A complete phone number, however written.
    assert.deepEqual(ids((await search(ctx.adminToken, 'q=0412-345%206789')).items, 'client'), [perezId])
    // types=leads leaves the clients out.
    assert.deepEqual(ids((await search(ctx.adminToken, 'q=perez&types=leads')).items, 'client'), [])
  })

  it('finds a lead by the text of its activities, for whoever may see the lead', async () => {
    const note = await ctx.as(ctx.adminToken, 'POST', `/leads/${quotedLeadId}/activities`, {
      type: 'meeting',
      body: 'Confirmó la reunión del jueves en Valencia',
    })
    assert.equal(note.statusCode, 201, note.body)
    const page = await search(sales.token, 'q=reunion%20valencia')
    assert.deepEqual(ids(page.items, 'lead'), [quotedLeadId])
    assert.equal(page.items[0]?.snippet, 'Confirmó la <mark>reunión</mark> del jueves en <mark>Valencia</mark>')
    assert.equal(page.total, 1)
    assert.deepEqual((await search(otherSales.token, 'q=reunion')).items, [])
    // Found by its notes and its activities at once, the lead is one hit.
    const both = await ctx.as(ctx.adminToken, 'POST', `/leads/${quotedLeadId}/activities`, {
      type: 'note',
      body: 'Las cotizaciones siguen en pie',
    })
    assert.equal(both.statusCode, 201, both.body)
    const once = await search(ctx.adminToken, 'q=cotizaciones&types=leads')
    assert.deepEqual(ids(once.items, 'lead').sort(), [quotedLeadId, othersLeadId].sort())
    assert.equal(once.total, 2)
  })

  it('escapes everything in a snippet but <mark>', async () => {
    const page = await search(ctx.adminToken, 'q=presupuesto')
    const hit = page.items.find((item) => item.id === scriptLeadId)
    assert.equal(
      hit?.snippet,
      'Pidió <mark>presupuesto</mark> &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;más&quot;',
    )
    const alert = await search(ctx.adminToken, 'q=alert')
    assert.ok(alert.items.every((item) => !/<(?!\/?mark>)/.test(item.snippet)))
    assert.deepEqual(ids(alert.items, 'lead'), [scriptLeadId])
  })

  it('gives sales users only their own leads, and every client', async () => {
    const mine = await search(sales.token, 'q=cotizacion')
    assert.deepEqual(ids(mine.items, 'lead'), [quotedLeadId])
    const theirs = await search(otherSales.token, 'q=cotizacion')
    assert.deepEqual(ids(theirs.items, 'lead'), [othersLeadId])
    assert.equal(theirs.total, 1)
    assert.deepEqual(ids((await search(otherSales.token, 'q=presupuesto')).items, 'lead'), [])
    assert.deepEqual(ids((await search(otherSales.token, 'q=perez')).items, 'client'), [perezId])
  })

  it('answers stop words and symbols with no hits', async () => {
    for (const q of ['la%20de%20las', 'para', '%25%25%25', '!!!', '%3C%3E', "'%20%7C%20!"]) {
      const page = await search(ctx.adminToken, `q=${q}`)
      assert.deepEqual(page.items, [], q)
      assert.equal(page.total, 0)
    }
  })

  it('requires every word, and pages one ranked list with the cursor', async () => {
    assert.equal((await search(ctx.adminToken, 'q=perez%20cotizacion')).total, 0)
    const first = await search(ctx.adminToken, 'q=cotizacion&limit=1')
    assert.equal(first.items.length, 1)
    assert.equal(first.total, 2)
    assert.ok(first.next_cursor)
    const second = await search(ctx.adminToken, `q=cotizacion&limit=1&cursor=${first.next_cursor}`)
    assert.equal(second.next_cursor, null)
    assert.deepEqual(
      [...ids(first.items, 'lead'), ...ids(second.items, 'lead')].sort(),
      [quotedLeadId, othersLeadId].sort(),
    )
    assert.ok((first.items[0]?.score ?? 0) >= (second.items[0]?.score ?? 0))
    const other = await ctx.as(ctx.adminToken, 'GET', `/search?q=ana&limit=1&cursor=${first.next_cursor}`)
    assert.equal(other.statusCode, 400)
    assert.equal(problemOf(other).errors?.[0]?.field, 'cursor')
  })

  it('never finds what is in the trash', async () => {
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/leads/${othersLeadId}`)).statusCode, 204)
    assert.deepEqual(ids((await search(ctx.adminToken, 'q=cotizacion')).items, 'lead'), [quotedLeadId])
    const lone = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      contact_name: 'Zoila Trash',
      phone: '+584165550123',
    })
    assert.equal(lone.statusCode, 201, lone.body)
    assert.equal((await search(ctx.adminToken, 'q=zoila')).total, 1)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/clients/${lone.json().id}`)).statusCode, 204)
    assert.equal((await search(ctx.adminToken, 'q=zoila')).total, 0)
  })

  it('refuses an unknown type, naming the field', async () => {
    const response = await ctx.as(ctx.adminToken, 'GET', '/search?q=juan&types=clients,users')
    assert.equal(response.statusCode, 400)
    assert.equal(problemOf(response).errors?.[0]?.field, 'types')
    assert.equal((await ctx.as(undefined, 'GET', '/search?q=juan')).statusCode, 401)
  })
})
