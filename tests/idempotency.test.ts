import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { ADMIN, problemOf, startTestContext, type TestContext } from './helpers/context.js'
import { uniquePhone } from './helpers/fixtures.js'
import { type Instance, startTwoInstances } from './helpers/instances.js'

describe('Idempotency-Key', () => {
  let ctx: TestContext
  let clientId: number

  const post = (url: string, body: unknown, key?: string, token = ctx.adminToken) =>
    ctx.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${token}`, ...(key !== undefined && { 'idempotency-key': key }) },
      payload: body as never,
    })
  const leadCount = async (notes: string) =>
    (
      await ctx.db
        .selectFrom('leads')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('sales_notes', '=', notes)
        .executeTakeFirstOrThrow()
    ).n
  const keyRows = (key: string) => ctx.db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).execute()

  before(async () => {
    // A one-second throttling window makes the server purge expired rows every second.
    ctx = await startTestContext({ LOGIN_THROTTLE_WINDOW_SECONDS: '1' })
    const client = await post('/clients', { contact_name: 'Idempotent Client', phone: uniquePhone() })
    clientId = client.json().id
  })
  after(() => ctx.close())

  it('replays the first answer with Idempotent-Replayed: true and its Location, and changes nothing', async () => {
    const key = randomUUID()
    const body = { client_id: clientId, channel: 'web', sales_notes: 'replayed once' }
    const first = await post('/leads', body, key)
    assert.equal(first.statusCode, 201, first.body)
    assert.equal(first.headers['idempotent-replayed'], undefined)
    const auditBefore = await ctx.auditRows('leads', first.json().id)
    // The same body with its fields in another order is the same request.
    const again = await post('/leads', { sales_notes: 'replayed once', channel: 'web', client_id: clientId }, key)
    assert.equal(again.statusCode, 201)
    assert.equal(again.headers['idempotent-replayed'], 'true')
    assert.equal(again.headers.location, first.headers.location)
    assert.match(String(again.headers['content-type']), /^application\/json/)
    assert.deepEqual(again.json(), first.json())
    assert.equal(await leadCount('replayed once'), 1)
    assert.deepEqual(await ctx.auditRows('leads', first.json().id), auditBefore)
  })

  it('the same key with another body, or on another route, is 422 idempotency_key_reused', async () => {
    const key = randomUUID()
    const first = await post('/leads', { client_id: clientId, channel: 'web', sales_notes: 'first body' }, key)
    assert.equal(first.statusCode, 201)
    const other = await post('/leads', { client_id: clientId, channel: 'web', sales_notes: 'other body' }, key)
    assert.equal(other.statusCode, 422, other.body)
    assert.equal(problemOf(other).code, 'idempotency_key_reused')
    const elsewhere = await post('/clients', { contact_name: 'Elsewhere', phone: uniquePhone() }, key)
    assert.equal(elsewhere.statusCode, 422)
    assert.equal(await leadCount('other body'), 0)
  })

  it('keys belong to their caller: another user, or an API key, with the same key runs anew', async () => {
    const key = randomUUID()
    const body = { client_id: clientId, channel: 'web', sales_notes: 'per caller' }
    const management = await ctx.createUser('management')
    const apiKey = (await post('/auth/api-keys', { name: 'retries', scopes: ['read', 'write'] })).json().key
    for (const token of [ctx.adminToken, management.token, apiKey]) {
      const answer = await post('/leads', body, key, token)
      assert.equal(answer.statusCode, 201, answer.body)
      assert.equal(answer.headers['idempotent-replayed'], undefined)
    }
    assert.equal((await post('/leads', body, key, apiKey)).headers['idempotent-replayed'], 'true')
    assert.equal(await leadCount('per caller'), 3)
  })

  it('refuses a key that is empty, too long or not printable ASCII, naming the header', async () => {
    for (const key of ['', 'x'.repeat(256), 'clé']) {
      const answer = await post('/leads', { client_id: clientId, channel: 'web', sales_notes: 'bad key' }, key)
      assert.equal(answer.statusCode, 400, `${JSON.stringify(key)}: ${answer.body}`)
      assert.equal(problemOf(answer).errors?.[0]?.field, 'idempotency-key')
    }
    const longest = await post('/leads', { client_id: clientId, channel: 'web' }, ` ~${'k'.repeat(253)}`)
    assert.equal(longest.statusCode, 201, longest.body)
    assert.equal(await leadCount('bad key'), 0)
  })

  it('keeps a 4xx answer as final: the repeat replays it even once the conflict is gone', async () => {
    const phone = uniquePhone()
    const taken = await post('/clients', { contact_name: 'Holder', phone })
    const key = randomUUID()
    const conflict = await post('/clients', { contact_name: 'Second', phone }, key)
    assert.equal(conflict.statusCode, 409)
    assert.equal(problemOf(conflict).code, 'phone_taken')
    await ctx.as(ctx.adminToken, 'DELETE', `/clients/${taken.json().id}`)
    const again = await post('/clients', { contact_name: 'Second', phone }, key)
    assert.equal(again.statusCode, 409)
    assert.equal(again.headers['idempotent-replayed'], 'true')
    assert.match(String(again.headers['content-type']), /^application\/problem\+json/)
    assert.equal(problemOf(again).code, 'phone_taken')
  })

  it('releases the key after a 5xx, so that a retry runs the request again', async () => {
    // A database failure on one client name, as an outage in the middle of the request would be.
    await sql`create function refuse_explosive() returns trigger language plpgsql as $$
      begin
        if new.contact_name = 'Explosive' then raise exception 'simulated failure' using errcode = 'XX000'; end if;
        return new;
      end $$`.execute(ctx.db)
    await sql`create trigger refuse_explosive before insert on clients for each row execute function refuse_explosive()`.execute(
      ctx.db,
    )
    const key = randomUUID()
    const body = { contact_name: 'Explosive', phone: uniquePhone() }
    const failed = await ctx.injectUnchecked('a 500, which no operation documents, is forced here', {
      method: 'POST',
      url: '/clients',
      headers: { authorization: `Bearer ${ctx.adminToken}`, 'idempotency-key': key },
      payload: body,
    })
    assert.equal(failed.statusCode, 500)
    assert.deepEqual(await keyRows(key), [], 'the claim is released')
    await sql`drop trigger refuse_explosive on clients`.execute(ctx.db)
    await sql`drop function refuse_explosive()`.execute(ctx.db)
    const retried = await post('/clients', body, key)
    assert.equal(retried.statusCode, 201, retried.body)
    assert.equal(retried.headers['idempotent-replayed'], undefined)
  })

  it('answers 409 idempotency_in_progress while the first request runs; a claim left by a dead process lapses', async () => {
    const key = randomUUID()
    const body = { client_id: clientId, channel: 'web', sales_notes: 'in progress' }
    // The claim the first request commits before it runs, as another instance would have it now.
    const claimFor = async (claimedAt: string) => {
      const answer = await post('/leads', body, `probe-${key}`)
      assert.equal(answer.statusCode, 201)
      const [probe] = await keyRows(`probe-${key}`)
      await ctx.db
        .insertInto('idempotency_keys')
        .values({
          caller: probe?.caller as string,
          key,
          request_hash: probe?.request_hash as Buffer,
          claimed_at: sql`now() - ${claimedAt}::interval`,
          expires_at: sql`now() + interval '1 day'`,
        })
        .execute()
      await ctx.db.deleteFrom('leads').where('id', '=', answer.json().id).execute()
    }
    await claimFor('1 second')
    const running = await post('/leads', body, key)
    assert.equal(running.statusCode, 409, running.body)
    assert.equal(problemOf(running).code, 'idempotency_in_progress')
    assert.equal(await leadCount('in progress'), 0)

    // Three minutes without an answer: its process died, and the repeat runs it.
    await ctx.db
      .updateTable('idempotency_keys')
      .set({ claimed_at: sql`now() - interval '3 minutes'` })
      .where('key', '=', key)
      .execute()
    const takenOver = await post('/leads', body, key)
    assert.equal(takenOver.statusCode, 201, takenOver.body)
    assert.equal(await leadCount('in progress'), 1)
  })

  it('expires keys after 24 hours: the key is new again, and the server purges the row', async () => {
    const key = randomUUID()
    const first = await post('/leads', { client_id: clientId, channel: 'web', sales_notes: 'day one' }, key)
    assert.equal(first.statusCode, 201)
    await ctx.db
      .updateTable('idempotency_keys')
      .set({ expires_at: sql`now() - interval '1 second'` })
      .where('key', '=', key)
      .execute()
    const reused = await post('/leads', { client_id: clientId, channel: 'web', sales_notes: 'day two' }, key)
    assert.equal(reused.statusCode, 201, 'an expired key is free again')

    await ctx.db
      .updateTable('idempotency_keys')
      .set({ expires_at: sql`now() - interval '1 second'` })
      .where('key', '=', key)
      .execute()
    let left = 1
    for (let attempt = 0; attempt < 50 && left > 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      left = (await keyRows(key)).length
    }
    assert.equal(left, 0, 'the expired key is purged in the background')
  })

  it('every creating POST takes the header, and the OpenAPI document says so', async () => {
    const document = (await ctx.inject({ method: 'GET', url: '/openapi.json' })).json()
    for (const path of ['/clients', '/leads', '/users', '/forms', '/views', '/leads/{id}/activities']) {
      const operation = document.paths[path].post
      assert.ok(
        operation.parameters.some((parameter: { name: string; in: string }) => parameter.name === 'idempotency-key'),
        path,
      )
      assert.ok(operation.responses['201'].headers['idempotent-replayed'], path)
      assert.ok(operation.responses['409'] && operation.responses['422'], path)
    }
    const key = randomUUID()
    const user = { username: `idem.${key.slice(0, 8)}`, password: 'a-long-password', role: 'sales' }
    const created = await post('/users', user, key)
    assert.equal(created.statusCode, 201)
    const replayed = await post('/users', user, key)
    assert.equal(replayed.headers['idempotent-replayed'], 'true')
    assert.equal(replayed.headers.location, created.headers.location)
    // Only a keyed hash of the request is kept, never the password.
    const [row] = await keyRows(key)
    assert.ok(!JSON.stringify(row).includes('a-long-password'))
  })
})

describe('Idempotency-Key across two instances', () => {
  let instances: [Instance, Instance]
  let close: () => Promise<void>

  before(async () => {
    ;({ instances, close } = await startTwoInstances())
  })
  after(() => close?.())

  it('ten concurrent POST /leads with one key: exactly one lead, the others replay it or get 409, none a 5xx', async () => {
    const token = (await instances[0].request('POST', '/auth/login', ADMIN)).body.access_token as string
    const client = await instances[0].request(
      'POST',
      '/clients',
      { contact_name: 'Racing', phone: uniquePhone() },
      token,
    )
    assert.equal(client.status, 201)
    const body = { client_id: client.body.id, channel: 'whatsapp', sales_notes: 'ten at once' }
    const key = randomUUID()
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        (instances[index % 2] as Instance).request('POST', '/leads', body, token, { 'idempotency-key': key }),
      ),
    )
    const statuses = answers.map((answer) => answer.status)
    assert.ok(
      statuses.every((status) => status === 201 || status === 409),
      statuses.join(),
    )
    const ran = answers.filter((answer) => answer.status === 201 && answer.headers['idempotent-replayed'] === undefined)
    assert.equal(ran.length, 1, `exactly one ran: ${statuses.join()}`)
    const location = ran[0]?.headers.location
    for (const answer of answers) {
      if (answer.status === 201) assert.equal(answer.headers.location, location)
      else assert.equal(answer.body.code, 'idempotency_in_progress')
    }
    const leads = await instances[1].request('GET', `/leads?client_id=${client.body.id}`, undefined, token)
    assert.equal(leads.body.total, 1)
    // Once it has answered, every repeat on either instance replays it.
    for (const instance of instances) {
      const repeat = await instance.request('POST', '/leads', body, token, { 'idempotency-key': key })
      assert.equal(repeat.status, 201)
      assert.equal(repeat.headers['idempotent-replayed'], 'true')
      assert.equal(repeat.headers.location, location)
    }
  })
})
