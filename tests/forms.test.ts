import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { purgeExpiredSubmissionCounts } from '../src/forms/throttle.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { type MailSink, startMailSink, waitFor } from './helpers/peers.js'

const SITE = 'https://www.tienda.example'
const PER_FORM = 6
const PER_ADDRESS = 8

describe('web forms', () => {
  let ctx: TestContext
  let sink: MailSink
  let manager: TestUser
  let seller: TestUser
  let addressCounter = 0

  /** Every test posts from an address of its own, so that only the throttling test meets the limit. */
  const newAddress = () => `203.0.113.${++addressCounter}`
  const newForm = async (body: Record<string, unknown> = {}) => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/forms', {
      name: 'Contacto',
      allowed_origins: [SITE],
      ...body,
    })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { id: number; key: string; name: string }
  }
  /** A post as a browser sends an HTML form from the site. */
  const postForm = (key: string, fields: Record<string, string>, options: { origin?: string; address?: string } = {}) =>
    ctx.inject({
      method: 'POST',
      url: `/f/${key}`,
      remoteAddress: options.address ?? newAddress(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: options.origin ?? SITE },
      payload: new URLSearchParams(fields).toString(),
    })
  const count = async (table: 'clients' | 'leads' | 'lead_activities') =>
    Number(
      (
        await ctx.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )

  before(async () => {
    sink = await startMailSink()
    ctx = await startTestContext({
      SMTP_URL: sink.url,
      WORKER_POLL_MS: '50',
      FORM_MAX_SUBMISSIONS_PER_FORM: String(PER_FORM),
      FORM_MAX_SUBMISSIONS_PER_ADDRESS: String(PER_ADDRESS),
    })
    await ctx.as(ctx.adminToken, 'PATCH', '/users/1', { email: 'admin@example.com' })
    manager = await ctx.createUser('management', { email: 'boss@example.com' })
    seller = await ctx.createUser('sales', { email: 'seller@example.com' })
  })
  after(async () => {
    await ctx.close()
    await sink.close()
  })

  it('manages forms: a public key, origins as browsers send them, audit rows without the key', async () => {
    const form = await newForm({ allowed_origins: ['https://WWW.Tienda.Example:443'], assign_to: seller.id })
    assert.match(form.key, /^[A-Za-z0-9_-]{24}$/)
    const read = await ctx.as(ctx.adminToken, 'GET', `/forms/${form.id}`)
    assert.deepEqual(read.json().allowed_origins, [SITE])
    assert.equal((await ctx.as(ctx.adminToken, 'GET', '/forms')).json().total >= 1, true)

    const rotated = await ctx.as(ctx.adminToken, 'POST', `/forms/${form.id}/rotate-key`)
    assert.equal(rotated.statusCode, 200)
    assert.notEqual(rotated.json().key, form.key)
    assert.equal((await postForm(form.key, { name: 'X', phone: '04121234567' })).statusCode, 404)

    const patched = await ctx.as(ctx.adminToken, 'PATCH', `/forms/${form.id}`, { assign_to: null, name: 'Otro' })
    assert.equal(patched.statusCode, 200, patched.body)
    assert.equal(patched.json().assign_to, null)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/forms/${form.id}`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/forms/${form.id}`)).statusCode, 404)

    const audit = await ctx.auditRows('web_forms', form.id)
    assert.deepEqual(
      audit.map((row) => row.action),
      ['create', 'update', 'update', 'delete'],
    )
    for (const row of audit) {
      assert.doesNotMatch(JSON.stringify(row), new RegExp(`${form.key}|${rotated.json().key}`))
    }

    for (const [body, field] of [
      [{ name: 'X', allowed_origins: ['https://a.example/path'] }, 'allowed_origins.0'],
      [{ name: 'X', allowed_origins: [SITE, 'https://[bad'] }, 'allowed_origins.1'],
      [{ name: 'X', assign_to: 999_999 }, 'assign_to'],
      [{ name: '' }, 'name'],
    ] as const) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/forms', body)
      assert.equal(response.statusCode, 400, JSON.stringify(body))
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        [field],
      )
    }
  })

  it('takes an HTML form post from the allowed origin: CORS for it alone, 303, the client reused', async () => {
    const form = await newForm({ redirect_url: `${SITE}/gracias` })
    const existing = await ctx.as(seller.token, 'POST', '/clients', {
      contact_name: 'Ana Pérez',
      phone: '+584121112233',
    })
    const preflight = await ctx.inject({
      method: 'OPTIONS',
      url: `/f/${form.key}`,
      headers: {
        origin: SITE,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    })
    assert.equal(preflight.statusCode, 204)
    assert.equal(preflight.headers['access-control-allow-origin'], SITE)
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/)
    const foreign = await ctx.inject({
      method: 'OPTIONS',
      url: `/f/${form.key}`,
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    assert.equal(foreign.headers['access-control-allow-origin'], undefined)

    const clientsBefore = await count('clients')
    const response = await postForm(form.key, {
      name: 'Ana P.',
      phone: '0412-111 22 33',
      email: '',
      message: '¿Tienen envíos a Mérida?',
      website: '',
    })
    assert.equal(response.statusCode, 303, response.body)
    assert.equal(response.headers.location, `${SITE}/gracias`)
    assert.equal(response.headers['access-control-allow-origin'], SITE)
    assert.equal(await count('clients'), clientsBefore, 'no duplicate client')

    const leads = await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${existing.json().id}`)
    assert.equal(leads.json().total, 1)
    const lead = leads.json().items[0]
    assert.deepEqual([lead.channel, lead.status, lead.assigned_to], ['web', 'new', null])
    const [activity] = (await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}/activities`)).json().items
    assert.deepEqual(
      [activity.type, activity.body, activity.created_by, activity.meta],
      ['form', '¿Tienen envíos a Mérida?', null, { form_id: form.id, form_name: 'Contacto' }],
    )
    const [audit] = await ctx.auditRows('leads', lead.id)
    assert.deepEqual([audit?.user_id, audit?.username], [null, 'form:Contacto'])

    // A second post reuses the open lead: one more activity, no new lead.
    const again = await postForm(form.key, { name: 'Ana', phone: '+584121112233', message: 'Sigo esperando' })
    assert.equal(again.statusCode, 303)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${existing.json().id}`)).json().total, 1)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}/activities`)).json().total, 2)

    // Unassigned, it mails every admin and management user with an email.
    await waitFor('the inbound-lead mails', () => sink.mails.length >= 2)
    const recipients = sink.mails.map((mail) => (Array.isArray(mail.to) ? mail.to[0] : mail.to)?.text).sort()
    assert.deepEqual(recipients, ['admin@example.com', 'boss@example.com'])
    assert.match(String(sink.mails[0]?.subject), new RegExp(`#${lead.id}`))
  })

  it('answers JSON posts with 201, refuses other origins, and validates like POST /clients', async () => {
    const form = await newForm({ assign_to: seller.id })
    const json = await ctx.inject({
      method: 'POST',
      url: `/f/${form.key}`,
      remoteAddress: newAddress(),
      payload: { name: 'Luis Gómez', phone: '+58 414-765 4321', company: 'Gómez C.A.' },
    })
    assert.equal(json.statusCode, 201, json.body)
    assert.deepEqual(json.json(), { received: true })
    const client = (await ctx.as(ctx.adminToken, 'GET', '/clients/by-phone/%2B584147654321')).json()
    assert.deepEqual([client.contact_name, client.company_name, client.created_by], ['Luis Gómez', 'Gómez C.A.', null])
    const lead = (await ctx.as(seller.token, 'GET', `/leads?client_id=${client.id}`)).json().items[0]
    assert.equal(lead.assigned_to, seller.id, 'the form’s own assignee')

    const before = [await count('clients'), await count('leads'), await count('lead_activities')]
    const foreign = await postForm(form.key, { name: 'Eve', phone: '04141234567' }, { origin: 'https://evil.example' })
    assert.equal(foreign.statusCode, 403)
    assert.equal(problemOf(foreign).code, 'origin_not_allowed')
    for (const [fields, field] of [
      [{ name: 'Eve', phone: '12' }, 'phone'],
      [{ phone: '04141234567' }, 'name'],
      [{ name: 'Eve', phone: '04141234567', email: 'not-an-email' }, 'email'],
      [{ name: 'Eve', phone: '04141234567', extra: 'x' }, 'extra'],
    ] as const) {
      const response = await postForm(form.key, fields)
      assert.equal(response.statusCode, 400, JSON.stringify(fields))
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        [field],
      )
    }
    assert.deepEqual([await count('clients'), await count('leads'), await count('lead_activities')], before)
  })

  it('drops a filled honeypot as if it were taken', async () => {
    const form = await newForm({ redirect_url: `${SITE}/gracias` })
    const before = [await count('clients'), await count('leads'), await count('lead_activities')]
    const robot = await postForm(form.key, { name: 'Bot', phone: 'nope', website: 'http://spam.example' })
    assert.equal(robot.statusCode, 303)
    const jsonRobot = await ctx.inject({
      method: 'POST',
      url: `/f/${form.key}`,
      remoteAddress: newAddress(),
      payload: { name: 'Bot', phone: '04141234567', website: 'http://spam.example' },
    })
    assert.equal(jsonRobot.statusCode, 201)
    assert.deepEqual([await count('clients'), await count('leads'), await count('lead_activities')], before)
  })

  it('throttles per form and per address with 429 and Retry-After', async () => {
    const form = await newForm()
    const other = await newForm()
    const post = (key: string, address: string, index: number) =>
      postForm(key, { name: 'Spam', phone: `0414${String(5_000_000 + index)}` }, { address })
    for (let index = 0; index < PER_FORM; index++) {
      assert.equal((await post(form.key, newAddress(), index)).statusCode, 201)
    }
    const perForm = await post(form.key, newAddress(), 99)
    assert.equal(perForm.statusCode, 429)
    assert.ok(Number(perForm.headers['retry-after']) > 0)

    const address = newAddress()
    for (let index = 0; index < PER_ADDRESS; index++) {
      const target = index < PER_FORM - 1 ? other.key : (await newForm()).key
      assert.equal((await post(target, address, 100 + index)).statusCode, 201)
    }
    const perAddress = await post((await newForm()).key, address, 200)
    assert.equal(perAddress.statusCode, 429)
    assert.equal(problemOf(perAddress).code, 'too_many_attempts')
    assert.ok(Number(perAddress.headers['retry-after']) > 0)

    // Once the windows are over (a zero-length window ends them all now), the purge clears them.
    assert.ok((await purgeExpiredSubmissionCounts(ctx.db, 0)) >= 2)
    assert.equal((await post(form.key, address, 300)).statusCode, 201)
  })

  it('counts only taken posts against the form: junk from many addresses does not shut it', async () => {
    const form = await newForm()
    const junk = [{ name: 'Spam', phone: 'nope' }, { name: '', phone: '04141234567' }, { phone: '04141234567' }]
    for (let index = 0; index < PER_FORM * 3; index++) {
      const refused = await postForm(form.key, junk[index % junk.length] as Record<string, string>)
      assert.equal(refused.statusCode, 400, refused.body)
    }
    // Robots (a filled honeypot) are not counted either.
    for (let index = 0; index < PER_FORM; index++) {
      const robot = await postForm(form.key, { name: 'Bot', phone: '04141234567', website: 'http://spam.example' })
      assert.equal(robot.statusCode, 201)
    }
    const taken = await postForm(form.key, { name: 'Real', phone: '04147000001' })
    assert.equal(taken.statusCode, 201, taken.body)

    // Junk is still throttled where it comes from: one address, past its limit, gets 429.
    const address = newAddress()
    for (let index = 0; index < PER_ADDRESS; index++) {
      assert.equal((await postForm(form.key, { name: 'Spam', phone: 'nope' }, { address })).statusCode, 400)
    }
    const throttled = await postForm(form.key, { name: 'Real', phone: '04147000002' }, { address })
    assert.equal(throttled.statusCode, 429)
    assert.equal(problemOf(throttled).code, 'too_many_attempts')
    assert.equal((await postForm(form.key, { name: 'Real', phone: '04147000003' })).statusCode, 201)
  })

  it('refuses a wildcard among allowed_origins, on create and change, naming it', async () => {
    const form = await newForm()
    for (const origins of [['https://*.tienda.example'], [SITE, 'https://*'], [SITE, 'http://tienda*.example:8080']]) {
      const field = `allowed_origins.${origins.length - 1}`
      const created = await ctx.as(ctx.adminToken, 'POST', '/forms', { name: 'Comodín', allowed_origins: origins })
      assert.equal(created.statusCode, 400, created.body)
      assert.deepEqual(
        problemOf(created).errors?.map((error) => error.field),
        [field],
      )
      assert.match(problemOf(created).detail, /wildcard/)
      const patched = await ctx.as(ctx.adminToken, 'PATCH', `/forms/${form.id}`, { allowed_origins: origins })
      assert.equal(patched.statusCode, 400, patched.body)
      assert.deepEqual(
        problemOf(patched).errors?.map((error) => error.field),
        [field],
      )
    }
    assert.deepEqual((await ctx.as(ctx.adminToken, 'GET', `/forms/${form.id}`)).json().allowed_origins, [SITE])
  })

  it('shows form, notes, status changes and assignments on the timeline in order', async () => {
    const form = await newForm()
    await postForm(form.key, { name: 'Rosa', phone: '04241239876', message: 'Quiero precios' })
    const client = (await ctx.as(ctx.adminToken, 'GET', '/clients/by-phone/04241239876')).json()
    const lead = (await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${client.id}`)).json().items[0]
    await ctx.as(ctx.adminToken, 'PATCH', `/leads/${lead.id}/assign`, { assigned_to: seller.id })
    await ctx.as(seller.token, 'POST', `/leads/${lead.id}/activities`, { type: 'call', body: 'Le llamé' })
    await ctx.as(seller.token, 'PATCH', `/leads/${lead.id}/status`, { status: 'contacted' })
    await ctx.as(seller.token, 'POST', `/leads/${lead.id}/activities`, { type: 'note', body: 'Envío cotización' })
    const timeline = (await ctx.as(seller.token, 'GET', `/leads/${lead.id}/activities`)).json().items
    assert.deepEqual(
      timeline.map((item: { type: string }) => item.type),
      ['note', 'status_change', 'call', 'assignment', 'form'],
    )
    assert.equal((await ctx.as(manager.token, 'GET', `/leads/${lead.id}/activities`)).json().total, 5)
  })
})
