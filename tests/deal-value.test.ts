import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parse } from 'csv-parse/sync'
import { cursorAfter } from '../src/db/paginate.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

type Lead = {
  id: number
  status: string
  amount: string | null
  currency: string
  expected_close_date: string | null
  lost_reason: string | null
}

describe('deal value of leads', () => {
  let ctx: TestContext
  let seller: TestUser
  let clientId: number

  before(async () => {
    ctx = await startTestContext({ DEFAULT_CURRENCY: 'VES' })
    seller = await ctx.createUser('sales')
    clientId = (await createClient(ctx)).id
  })
  after(() => ctx?.close())

  const fieldsOf = (response: { json(): unknown }) => (problemOf(response as never).errors ?? []).map((e) => e.field)

  it('round-trips amounts exactly, as decimal strings with 2 decimals', async () => {
    for (const [sent, stored] of [
      ['1234567890.12', '1234567890.12'],
      ['0.10', '0.10'],
      ['0.1', '0.10'],
      ['5', '5.00'],
      ['999999999999.99', '999999999999.99'],
    ]) {
      const lead = await createLead<Lead & { id: number }>(ctx, { client_id: clientId, amount: sent })
      assert.equal(lead.amount, stored)
      const read = await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}`)
      assert.equal(read.json().amount, stored)
      const row = await ctx.db.selectFrom('leads').select('amount').where('id', '=', lead.id).executeTakeFirstOrThrow()
      assert.equal(row.amount, stored)
    }
  })

  it('refuses a JSON number, three decimals, a negative or junk, naming amount', async () => {
    for (const amount of [12.5, 10, '1.234', '-1.00', '1e3', '1,50', 'abc', '', '1000000000000.00', '01.00']) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: clientId, channel: 'web', amount })
      assert.equal(response.statusCode, 400, `${JSON.stringify(amount)}: ${response.body}`)
      assert.deepEqual(fieldsOf(response), ['amount'], JSON.stringify(amount))
    }
    const lead = await createLead(ctx, { client_id: clientId })
    const patch = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { amount: 0.1 })
    assert.equal(patch.statusCode, 400)
    assert.deepEqual(fieldsOf(patch), ['amount'])
    assert.match(problemOf(patch).errors?.[0]?.message ?? '', /decimal string/)
  })

  it('takes DEFAULT_CURRENCY by default, ISO 4217 codes only', async () => {
    const lead = await createLead<Lead>(ctx, { client_id: clientId })
    assert.equal(lead.currency, 'VES')
    assert.equal(lead.amount, null)
    for (const currency of ['XYZ', 'usd', 'US', 'EURO']) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: clientId, channel: 'web', currency })
      assert.equal(response.statusCode, 400, currency)
      assert.deepEqual(fieldsOf(response), ['currency'])
    }
    const patch = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { currency: 'ABC' })
    assert.equal(patch.statusCode, 400)
    assert.deepEqual(fieldsOf(patch), ['currency'])
    const eur = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { currency: 'EUR' })
    assert.equal(eur.json().currency, 'EUR')
    const filter = await ctx.as(ctx.adminToken, 'GET', '/leads?currency=QQQ')
    assert.equal(filter.statusCode, 400)
    assert.deepEqual(fieldsOf(filter), ['currency'])
  })

  it('writes the deal in audit rows and events, old and new values as stored', async () => {
    const lead = await createLead<Lead>(
      ctx,
      { client_id: clientId, amount: '100', currency: 'USD', expected_close_date: '2027-03-31' },
      seller.token,
    )
    assert.equal(lead.expected_close_date, '2027-03-31')
    const patch = await ctx.as(seller.token, 'PATCH', `/leads/${lead.id}`, {
      amount: '250.5',
      expected_close_date: null,
    })
    assert.equal(patch.statusCode, 200, patch.body)
    assert.equal(patch.json().amount, '250.50')
    const rows = await ctx.auditRows('leads', lead.id)
    assert.equal(rows[0]?.new_values?.amount, '100.00')
    assert.equal(rows[0]?.new_values?.currency, 'USD')
    const update = rows.find((row) => row.action === 'update')
    assert.deepEqual(update?.old_values, { amount: '100.00', expected_close_date: '2027-03-31' })
    assert.deepEqual(update?.new_values, { amount: '250.50', expected_close_date: null })
    // The same amount written another way is no change.
    await ctx.as(seller.token, 'PATCH', `/leads/${lead.id}`, { amount: '250.50' })
    assert.equal((await ctx.auditRows('leads', lead.id)).length, rows.length)
    const event = await ctx.db
      .selectFrom('events')
      .selectAll()
      .where('type', '=', 'lead.updated')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow()
    const data = event.data as { object: Lead }
    assert.equal(data.object.amount, '250.50')
    assert.equal(data.object.currency, 'USD')
  })

  it('filters and sorts by amount and expected close date, leads without one last', async () => {
    const client = (await createClient(ctx)).id
    const made = []
    for (const [amount, date] of [
      ['10.00', '2027-01-10'],
      ['2000.00', null],
      [null, '2027-01-05'],
      ['300.25', '2027-02-01'],
    ] as const) {
      made.push(await createLead<Lead>(ctx, { client_id: client, amount, expected_close_date: date, currency: 'EUR' }))
    }
    const ids = (response: { json(): { items: Lead[] } }) => response.json().items.map((lead) => lead.id)
    const [a, b, c, d] = made.map((lead) => lead.id)
    const list = (query: string) => ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${client}&${query}`)
    assert.deepEqual(ids(await list('sort=amount')), [a, d, b, c])
    assert.deepEqual(ids(await list('sort=-amount')), [b, d, a, c])
    assert.deepEqual(ids(await list('sort=expected_close_date')), [c, a, d, b])
    assert.deepEqual(ids(await list('sort=-expected_close_date')), [d, a, c, b])
    assert.deepEqual(ids(await list('sort=amount&amount_min=10&amount_max=300.25')), [a, d])
    assert.deepEqual(ids(await list('sort=amount&amount_min=10.01')), [d, b])
    assert.deepEqual(
      ids(await list('sort=expected_close_date&expected_close_from=2027-01-06&expected_close_to=2027-02-01')),
      [a, d],
    )
    assert.deepEqual(ids(await list('sort=amount&currency=EUR&currency=USD')), [a, d, b, c])
    assert.deepEqual(ids(await list('currency=USD')), [])
    const bad = await list('amount_min=1.234')
    assert.equal(bad.statusCode, 400)
    assert.deepEqual(fieldsOf(bad), ['amount_min'])
    // Pages follow by cursor through the leads without an amount.
    const seen: number[] = []
    let cursor: string | null = null
    do {
      const page: { json(): { items: Lead[]; next_cursor: string | null } } = await list(
        `sort=-amount&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      )
      seen.push(...page.json().items.map((lead) => lead.id))
      cursor = page.json().next_cursor
    } while (cursor)
    assert.deepEqual(seen, [b, d, a, c])
    const dates: number[] = []
    cursor = null
    do {
      const page: { json(): { items: Lead[]; next_cursor: string | null } } = await list(
        `sort=expected_close_date&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      )
      dates.push(...page.json().items.map((lead) => lead.id))
      cursor = page.json().next_cursor
    } while (cursor)
    assert.deepEqual(dates, [c, a, d, b])
    // A cursor whose amount or date is no such value is a 400 naming cursor, never a 500.
    for (const [sort, value] of [
      ['amount', '1.2.3'],
      ['amount', 5],
      ['expected_close_date', '2027-02-30'],
      ['expected_close_date', 'tomorrow'],
    ] as const) {
      const forged = cursorAfter([0, value, 1], { client_id: client, sort })
      const response = await list(`sort=${sort}&cursor=${forged}`)
      assert.equal(response.statusCode, 400, `${sort} ${value}`)
      assert.deepEqual(fieldsOf(response), ['cursor'])
      assert.doesNotMatch(problemOf(response).errors?.[0]?.message ?? '', /other filters/)
    }
    // Saved views keep the new filters.
    const view = await ctx.as(ctx.adminToken, 'POST', '/views', {
      name: 'Big deals',
      resource: 'leads',
      filters: { amount_min: '1000', currency: ['EUR'], client_id: client },
    })
    assert.equal(view.statusCode, 201, view.body)
    assert.deepEqual(ids(await ctx.as(ctx.adminToken, 'GET', `/leads?view=${view.json().id}`)), [b])
    // Exports carry the deal, sorted the same way.
    const csv = parse(
      (await ctx.as(ctx.adminToken, 'GET', `/leads/export?format=csv&client_id=${client}&sort=-amount`)).rawPayload,
      { bom: true },
    ) as string[][]
    const header = csv[0] as string[]
    const column = (name: string) => csv.slice(1).map((row) => row[header.indexOf(name)])
    assert.deepEqual(column('id'), [b, d, a, c].map(String))
    assert.deepEqual(column('amount'), ['2000.00', '300.25', '10.00', ''])
    assert.deepEqual(column('currency'), ['EUR', 'EUR', 'EUR', 'EUR'])
    assert.deepEqual(column('expected_close_date'), ['', '2027-02-01', '2027-01-10', '2027-01-05'])
    const byDate = parse(
      (await ctx.as(ctx.adminToken, 'GET', `/leads/export?format=csv&client_id=${client}&sort=-expected_close_date`))
        .rawPayload,
      { bom: true },
    ) as string[][]
    assert.deepEqual(
      byDate.slice(1).map((row) => row[0]),
      [d, a, c, b].map(String),
    )
  })

  it('requires a lost reason from the list to discard a lead, and clears it on reopening', async () => {
    const lead = await createLead<Lead>(ctx, { client_id: clientId })
    const missing = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'discarded' })
    assert.equal(missing.statusCode, 400)
    assert.deepEqual(fieldsOf(missing), ['lost_reason'])
    const unknown = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
      status: 'discarded',
      lost_reason: 'weather',
    })
    assert.equal(unknown.statusCode, 400)
    assert.deepEqual(fieldsOf(unknown), ['lost_reason'])
    const misplaced = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
      status: 'contacted',
      lost_reason: 'price',
    })
    assert.equal(misplaced.statusCode, 400)
    assert.deepEqual(fieldsOf(misplaced), ['lost_reason'])
    const notDiscarded = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { lost_reason: 'price' })
    assert.equal(notDiscarded.statusCode, 400)
    assert.deepEqual(fieldsOf(notDiscarded), ['lost_reason'])
    assert.equal((await ctx.auditRows('leads', lead.id)).length, 1)

    const discarded = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
      status: 'discarded',
      lost_reason: 'price',
    })
    assert.equal(discarded.statusCode, 200, discarded.body)
    assert.equal(discarded.json().lost_reason, 'price')
    // Another reason later, by either route.
    const again = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
      status: 'discarded',
      lost_reason: 'competitor',
    })
    assert.equal(again.json().lost_reason, 'competitor')
    const patched = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { lost_reason: 'other' })
    assert.equal(patched.json().lost_reason, 'other')
    const badPatch = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}`, { lost_reason: 'weather' })
    assert.deepEqual(fieldsOf(badPatch), ['lost_reason'])

    const reopened = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })
    assert.equal(reopened.statusCode, 200)
    assert.equal(reopened.json().lost_reason, null)
    const rows = await ctx.auditRows('leads', lead.id)
    const last = rows.at(-1)
    assert.deepEqual(last?.old_values, { status: 'discarded', lost_reason: 'other' })
    assert.deepEqual(last?.new_values, { status: 'contacted', lost_reason: null })

    // POST /leads as discarded follows the same rule.
    const created = await ctx.as(ctx.adminToken, 'POST', '/leads', {
      client_id: clientId,
      channel: 'web',
      status: 'discarded',
    })
    assert.deepEqual(fieldsOf(created), ['lost_reason'])
    const withReason = await createLead<Lead>(ctx, {
      client_id: clientId,
      status: 'discarded',
      lost_reason: 'no_response',
    })
    assert.equal(withReason.lost_reason, 'no_response')
  })

  it('keeps lost_reasons and stage_probability in the pipeline settings', async () => {
    const settings = (await ctx.as(ctx.adminToken, 'GET', '/pipeline-settings')).json()
    assert.deepEqual(settings.lost_reasons, ['price', 'competitor', 'no_response', 'not_interested', 'other'])
    assert.deepEqual(settings.stage_probability, { new: 0.1, contacted: 0.3, quoted: 0.6 })
    const refused = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
      stage_probability: { new: 1.5, contacted: 0.3, quoted: 0.6 },
    })
    assert.equal(refused.statusCode, 400)
    assert.deepEqual(fieldsOf(refused), ['stage_probability.new'])
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
      lost_reasons: ['Precio', 'Sin respuesta'],
      stage_probability: { new: 0.05, contacted: 0.25, quoted: 0.5 },
    })
    assert.equal(put.statusCode, 200, put.body)
    const audit = (await ctx.auditRows('pipeline_settings')).at(-1)
    assert.deepEqual(audit?.new_values?.lost_reasons, ['Precio', 'Sin respuesta'])
    const lead = await createLead<Lead>(ctx, { client_id: clientId })
    const old = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
      status: 'discarded',
      lost_reason: 'price',
    })
    assert.deepEqual(fieldsOf(old), ['lost_reason'])
    assert.match(problemOf(old).errors?.[0]?.message ?? '', /Precio, Sin respuesta/)
    const ok = await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/status`, {
      status: 'discarded',
      lost_reason: 'Sin respuesta',
    })
    assert.equal(ok.statusCode, 200)
    // A reason taken out of the list stays on the leads that have it.
    await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {})
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}`)).json().lost_reason, 'Sin respuesta')
  })

  it('asks bulk status changes to discarded for one lost reason for every lead', async () => {
    const leads = [await createLead(ctx, { client_id: clientId }), await createLead(ctx, { client_id: clientId })]
    const ids = leads.map((lead) => lead.id)
    const missing = await ctx.as(ctx.adminToken, 'POST', '/leads/bulk', { action: 'status', status: 'discarded', ids })
    assert.equal(missing.statusCode, 400)
    assert.deepEqual(fieldsOf(missing), ['lost_reason'])
    const misplaced = await ctx.as(ctx.adminToken, 'POST', '/leads/bulk', {
      action: 'delete',
      lost_reason: 'price',
      ids,
    })
    assert.deepEqual(fieldsOf(misplaced), ['lost_reason'])
    const done = await ctx.as(ctx.adminToken, 'POST', '/leads/bulk', {
      action: 'status',
      status: 'discarded',
      lost_reason: 'competitor',
      ids,
    })
    assert.equal(done.statusCode, 200, done.body)
    assert.deepEqual(
      done.json().results.map((result: { status: number }) => result.status),
      [200, 200],
    )
    const rows = await ctx.db.selectFrom('leads').select('lost_reason').where('id', 'in', ids).execute()
    assert.deepEqual(
      rows.map((row) => row.lost_reason),
      ['competitor', 'competitor'],
    )
  })

  it('imports the deal columns, with the lost reason rules of the status route', async () => {
    const phone = (await createClient(ctx)).phone
    const file = [
      'telefono,canal,estado,monto,moneda,fecha_de_cierre,motivo_de_perdida',
      `${phone},web,nuevo,1500.5,eur,2027-04-30,`,
      `${phone},manual,descartado,,,,`,
      `${phone},whatsapp,descartado,,,,competitor`,
      `${phone},instagram,nuevo,1.234,XYZ,2027-02-30,`,
      `${phone},instagram,contactado,,,,price`,
    ].join('\n')
    const response = await ctx.inject({
      method: 'POST',
      url: '/leads/import?partial=true',
      headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
      payload: file,
    })
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json()
    assert.equal(body.created, 2)
    assert.deepEqual(
      body.errors
        .map((error: { row: number; field: string }) => [error.row, error.field])
        .sort((a: [number, string], b: [number, string]) => a[0] - b[0]),
      [
        [3, 'motivo_de_perdida'],
        [5, 'monto'],
        [5, 'moneda'],
        [5, 'fecha_de_cierre'],
        [6, 'motivo_de_perdida'],
      ],
    )
    const leads = await ctx.db
      .selectFrom('leads')
      .innerJoin('clients', 'clients.id', 'leads.client_id')
      .select(['leads.channel', 'amount', 'currency', 'expected_close_date', 'lost_reason', 'status'])
      .where('clients.phone', '=', phone)
      .orderBy('leads.id')
      .execute()
    assert.deepEqual(leads, [
      {
        channel: 'web',
        amount: '1500.50',
        currency: 'EUR',
        expected_close_date: '2027-04-30',
        lost_reason: null,
        status: 'new',
      },
      {
        channel: 'whatsapp',
        amount: null,
        currency: 'VES',
        expected_close_date: null,
        lost_reason: 'competitor',
        status: 'discarded',
      },
    ])
    // Reopening by upsert clears the reason; a discarded lead keeps its reason without the column.
    const upsert = await ctx.inject({
      method: 'POST',
      url: '/leads/import?mode=upsert',
      headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
      payload: ['telefono,canal,estado,monto', `${phone},whatsapp,contactado,20`].join('\n'),
    })
    assert.equal(upsert.statusCode, 200, upsert.body)
    const reopened = await ctx.db
      .selectFrom('leads')
      .innerJoin('clients', 'clients.id', 'leads.client_id')
      .select(['lost_reason', 'status', 'amount'])
      .where('clients.phone', '=', phone)
      .where('leads.channel', '=', 'whatsapp')
      .executeTakeFirstOrThrow()
    assert.deepEqual(reopened, { lost_reason: null, status: 'contacted', amount: '20.00' })
    // Discarding again by upsert names a reason from the list as it is when written.
    const discard = (reason: string) =>
      ctx.inject({
        method: 'POST',
        url: '/leads/import?mode=upsert',
        headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
        payload: ['telefono,canal,estado,lost_reason', `${phone},whatsapp,descartado,${reason}`].join('\n'),
      })
    const unknown = await discard('weather')
    assert.equal(unknown.statusCode, 422, unknown.body)
    assert.equal(unknown.json().errors[0]?.field, 'lost_reason')
    const again = await discard('no_response')
    assert.equal(again.statusCode, 200, again.body)
    assert.equal(again.json().updated, 1)
    const lost = await ctx.db
      .selectFrom('leads')
      .innerJoin('clients', 'clients.id', 'leads.client_id')
      .select(['lost_reason', 'status'])
      .where('clients.phone', '=', phone)
      .where('leads.channel', '=', 'whatsapp')
      .executeTakeFirstOrThrow()
    assert.deepEqual(lost, { lost_reason: 'no_response', status: 'discarded' })
  })
})
