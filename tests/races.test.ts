import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { ADMIN, type AuditRow, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { type Answer, type Instance, startTwoInstances } from './helpers/instances.js'

const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
type Status = (typeof STATUSES)[number]

// The transition table of API.md as management sees it (closed and discarded reopen to contacted),
// written out independently of the code under test.
const ALLOWED_FOR_MANAGEMENT: Record<Status, Status[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: ['contacted'],
  discarded: ['contacted'],
}

// One number, +584241234567, in ten written forms that a user might type.
const PHONE = '+584241234567'
const PHONE_FORMS = [
  '+58 424-123 4567',
  '0058 424 123 4567',
  '0424 1234567',
  '04241234567',
  '(0424) 123-4567',
  '+58 (424) 123.45.67',
  '0424.123.45.67',
  '+584241234567',
  '58 424 1234567',
  '0424-1234567',
]

const requestId = (label: string) => `${label}-${randomBytes(6).toString('hex')}`

describe('races on one API instance', () => {
  let ctx: TestContext
  let management: TestUser

  /** A request with a JSON body and a request id of our choosing, so that audit rows name it. */
  const send = async (
    token: string,
    method: 'POST' | 'PATCH' | 'GET',
    url: string,
    body: unknown,
    id: string,
  ): Promise<Answer & { id: string }> => {
    const response = await ctx.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, 'x-request-id': id },
      ...(body !== undefined && { payload: body as never }),
    })
    assert.equal(response.headers['x-request-id'], id, 'the request id is kept')
    return { status: response.statusCode, body: response.json(), headers: response.headers, id }
  }

  before(async () => {
    ctx = await startTestContext()
    management = await ctx.createUser('management')
  })
  after(() => ctx?.close())

  it('lets exactly one of twenty concurrent creates of one number, written ten ways, win', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        send(
          management.token,
          'POST',
          '/clients',
          { contact_name: `Racer ${index}`, phone: PHONE_FORMS[index % PHONE_FORMS.length] },
          requestId(`phone-race-${index}`),
        ),
      ),
    )
    for (const answer of answers) {
      assert.ok(answer.status === 201 || answer.status === 409, `${answer.status} ${JSON.stringify(answer.body)}`)
    }
    const winners = answers.filter((answer) => answer.status === 201)
    assert.equal(winners.length, 1, 'exactly one create wins')
    const winner = winners[0] as Answer & { id: string }
    assert.equal(winner.body.phone, PHONE)
    for (const loser of answers.filter((answer) => answer.status === 409)) {
      assert.equal(loser.body.code, 'phone_taken')
      assert.equal(loser.body.existing_id, winner.body.id, 'the 409 points at the winner')
    }

    const rows = await ctx.db.selectFrom('clients').select('id').where('phone', '=', PHONE).execute()
    assert.deepEqual(rows, [{ id: winner.body.id }])
    const audit = (await ctx.auditRows('clients')).filter((row) => row.new_values?.phone === PHONE)
    assert.equal(audit.length, 1, 'one audit row, the winner’s')
    assert.equal(audit[0]?.action, 'create')
    assert.equal(audit[0]?.record_id, winner.body.id)
    assert.equal(audit[0]?.request_id, winner.id, 'written by the request that won')
  })

  it('keeps a valid, fully audited chain under twenty concurrent status changes of one lead', async () => {
    const client = await ctx.as(management.token, 'POST', '/clients', {
      contact_name: 'Status Race',
      phone: '+584121110000',
    })
    assert.equal(client.statusCode, 201, client.body)

    for (let round = 0; round < 3; round++) {
      const created = await ctx.as(management.token, 'POST', '/leads', { client_id: client.json().id, channel: 'web' })
      assert.equal(created.statusCode, 201, created.body)
      const leadId: number = created.json().id

      const targets = Array.from({ length: 20 }, (_, index) => STATUSES[(index + round) % STATUSES.length] as Status)
      const answers = await Promise.all(
        targets.map((status, index) =>
          send(
            management.token,
            'PATCH',
            `/leads/${leadId}/status`,
            { status, ...(status === 'discarded' && { lost_reason: 'price' }) },
            requestId(`status-race-${round}-${index}`),
          ),
        ),
      )

      for (const [index, answer] of answers.entries()) {
        const target = targets[index] as Status
        if (answer.status === 200) {
          assert.equal(answer.body.status, target, 'a 200 leaves the lead in the status asked for')
        } else {
          assert.equal(answer.status, 409, `never ${answer.status}: ${JSON.stringify(answer.body)}`)
          assert.equal(answer.body.code, 'invalid_transition')
          assert.ok(Array.isArray(answer.body.allowed), 'the 409 lists the allowed next states')
        }
      }

      const rows = await ctx.auditRows('leads', leadId)
      assert.equal(rows[0]?.action, 'create')
      assert.equal(rows[0]?.new_values?.status, 'new')
      const updates = rows.slice(1)
      // Every row chains from the one before it through a move the table allows.
      const visited: Status[] = ['new']
      for (const row of updates) {
        assert.equal(row.action, 'update')
        const from = row.old_values?.status as Status
        const to = row.new_values?.status as Status
        // A discard names its reason, and a reopening clears it.
        const reason = from === 'discarded' || to === 'discarded' ? ['lost_reason'] : []
        assert.deepEqual(
          Object.keys(row.new_values ?? {}).sort(),
          [...reason, 'status'],
          'only the status is in the row',
        )
        assert.equal(from, visited.at(-1), `row ${row.id} starts where the previous one ended`)
        assert.ok(ALLOWED_FOR_MANAGEMENT[from].includes(to), `row ${row.id}: ${from} → ${to} is not allowed`)
        visited.push(to)
      }

      // The rows are exactly the answers that changed the status: each row names one 200 that asked for its
      // status, and each 200 without a row asked for a status the lead was in (a no-op).
      const byId = new Map(answers.map((answer, index) => [answer.id, { answer, target: targets[index] }]))
      const rowRequestIds = updates.map((row) => row.request_id)
      assert.equal(new Set(rowRequestIds).size, updates.length, 'one row per request')
      for (const row of updates) {
        const sent = byId.get(row.request_id as string)
        assert.ok(sent, `row ${row.id} names a request we sent`)
        assert.equal(sent.answer.status, 200, 'a refused change leaves no row')
        assert.equal(sent.target, row.new_values?.status)
      }
      const changed = answers.filter((answer) => rowRequestIds.includes(answer.id))
      const noOps = answers.filter((answer) => answer.status === 200 && !rowRequestIds.includes(answer.id))
      assert.equal(updates.length, changed.length)
      assert.ok(updates.length >= 1, 'the first change from new always succeeds')
      for (const answer of noOps) {
        assert.ok(visited.includes(answer.body.status), `a 200 without a row asked for ${answer.body.status}`)
      }

      // Each refusal was right for a status the lead was in, and listed that status's next states.
      const sameSet = (a: readonly string[], b: readonly string[]) => [...a].sort().join() === [...b].sort().join()
      for (const [index, answer] of answers.entries()) {
        if (answer.status !== 409) continue
        const target = targets[index] as Status
        const from = visited.filter(
          (state) => state !== target && !ALLOWED_FOR_MANAGEMENT[state].includes(target),
        ) as Status[]
        assert.ok(
          from.some((state) => sameSet(answer.body.allowed, ALLOWED_FOR_MANAGEMENT[state])),
          `→ ${target} refused with allowed ${answer.body.allowed}, from none of ${visited.join(', ')}`,
        )
      }

      const final = await ctx.as(management.token, 'GET', `/leads/${leadId}`)
      assert.equal(final.json().status, visited.at(-1), 'the lead is where the last row left it')
    }
  })

  it('writes one chained audit row for each of twenty concurrent PATCHes of one client', async () => {
    const created = await ctx.as(management.token, 'POST', '/clients', {
      contact_name: 'Address Race',
      phone: '+584121110001',
      address: 'Initial address',
    })
    assert.equal(created.statusCode, 201, created.body)
    const clientId: number = created.json().id

    const addresses = Array.from({ length: 20 }, (_, index) => `Calle ${index + 1}, Caracas`)
    const answers = await Promise.all(
      addresses.map((address, index) =>
        send(management.token, 'PATCH', `/clients/${clientId}`, { address }, requestId(`address-race-${index}`)),
      ),
    )
    for (const [index, answer] of answers.entries()) {
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.equal(answer.body.address, addresses[index])
    }

    const rows = await ctx.auditRows('clients', clientId)
    assert.equal(rows[0]?.action, 'create')
    const updates = rows.slice(1)
    assert.equal(updates.length, 20, 'no lost audit rows')
    assert.deepEqual(updates.map((row) => row.request_id).sort(), answers.map((answer) => answer.id).sort())
    let previous = rows[0]?.new_values?.address
    assert.equal(previous, 'Initial address')
    for (const row of updates) {
      assert.equal(row.action, 'update')
      assert.deepEqual(row.old_values, { address: previous }, `row ${row.id} starts where the previous one ended`)
      assert.deepEqual(Object.keys(row.new_values ?? {}), ['address'])
      const sent = answers.find((answer) => answer.id === row.request_id)
      assert.equal(row.new_values?.address, sent?.body.address, 'each row holds its own request’s address')
      previous = row.new_values?.address
    }
    const final = await ctx.as(management.token, 'GET', `/clients/${clientId}`)
    assert.equal(final.json().address, previous, 'the client holds the last row’s address')
  })
})

describe('two API instances on one database', () => {
  const MAX_FAILURES = 5
  let instances: [Instance, Instance]
  let closeInstances: () => Promise<void>
  let adminToken: string

  before(async () => {
    ;({ instances, close: closeInstances } = await startTwoInstances({
      LOGIN_MAX_FAILURES_PER_USER: String(MAX_FAILURES),
      FORM_MAX_SUBMISSIONS_PER_ADDRESS: '100',
      // On the embedded database the two apps share its one connection: the second waits for the
      // first's transactions, however slow a loaded machine makes them.
      DB_CONNECT_TIMEOUT_MS: '15000',
    }))
    const login = await instances[0].request('POST', '/auth/login', ADMIN)
    assert.equal(login.status, 200)
    adminToken = login.body.access_token
  })
  after(() => closeInstances?.())

  it('lets exactly one of twenty concurrent creates of one number, split across both, win', async () => {
    const phone = '+584149876543'
    const forms = ['0414-9876543', '+58 414 987 6543', '00584149876543', '(0414) 987.65.43', '58 414 9876543']
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        instances[index % 2]?.request(
          'POST',
          '/clients',
          { contact_name: `Twin ${index}`, phone: forms[index % forms.length] },
          adminToken,
        ),
      ),
    )
    const statuses = answers.map((answer) => answer?.status)
    assert.deepEqual([...statuses].sort(), [201, ...Array(19).fill(409)], JSON.stringify(statuses))
    const winner = answers.find((answer) => answer?.status === 201)?.body
    assert.equal(winner.phone, phone)
    for (const loser of answers.filter((answer) => answer?.status === 409)) {
      assert.equal(loser?.body.code, 'phone_taken')
      assert.equal(loser?.body.existing_id, winner.id)
    }
    for (const instance of instances) {
      const found = await instance.request(
        'GET',
        `/clients/by-phone/${encodeURIComponent(phone)}`,
        undefined,
        adminToken,
      )
      assert.equal(found.status, 200)
      assert.equal(found.body.id, winner.id, 'both instances see the one winner')
    }
    const audit = await instances[1].request(
      'GET',
      '/audit-logs?table_name=clients&action=create&limit=200',
      undefined,
      adminToken,
    )
    assert.equal(audit.status, 200)
    const rows = (audit.body.items as AuditRow[]).filter((row) => row.new_values?.phone === phone)
    assert.deepEqual(
      rows.map((row) => row.record_id),
      [winner.id],
      'one create row, for the winner',
    )
  })

  it('counts failed logins alternated between both instances together', async () => {
    const username = `twin.${randomBytes(3).toString('hex')}`
    const password = 'the-right-password'
    const created = await instances[0].request('POST', '/users', { username, password, role: 'sales' }, adminToken)
    assert.equal(created.status, 201, JSON.stringify(created.body))

    for (let attempt = 0; attempt < MAX_FAILURES; attempt++) {
      const answer = await instances[attempt % 2]?.request('POST', '/auth/login', {
        username,
        password: `wrong-${attempt}`,
      })
      assert.equal(answer?.status, 401, `failure ${attempt + 1} of ${MAX_FAILURES}`)
    }
    // The sixth attempt is throttled on either instance, even with the right password.
    for (const [index, instance] of instances.entries()) {
      const answer = await instance.request('POST', '/auth/login', { username, password })
      assert.equal(answer.status, 429, `instance ${index + 1}`)
      assert.equal(answer.body.code, 'too_many_attempts')
      const retryAfter = Number(answer.headers['retry-after'])
      assert.ok(retryAfter > 0 && retryAfter <= 900, `Retry-After ${answer.headers['retry-after']}`)
    }
  })

  it('hands thirty inbound leads posted to both instances to three sales users in turn: ten each', async () => {
    const sellers: number[] = []
    for (let index = 0; index < 3; index++) {
      const username = `turn${index}.${randomBytes(3).toString('hex')}`
      const user = await instances[0].request(
        'POST',
        '/users',
        { username, password: 'password-123', role: 'sales' },
        adminToken,
      )
      assert.equal(user.status, 201, JSON.stringify(user.body))
      sellers.push(user.body.id)
    }
    const rules = await instances[1].request(
      'PUT',
      '/assignment-rules',
      { mode: 'round_robin', users: sellers },
      adminToken,
    )
    assert.equal(rules.status, 200, JSON.stringify(rules.body))
    const form = await instances[0].request('POST', '/forms', { name: 'Turnos' }, adminToken)
    assert.equal(form.status, 201, JSON.stringify(form.body))

    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        instances[index % 2]?.request('POST', `/f/${form.body.key}`, {
          name: `Contacto ${index}`,
          phone: `+58416${String(4_000_000 + index)}`,
        }),
      ),
    )
    assert.deepEqual(
      answers.map((answer) => answer?.status),
      Array(30).fill(201),
    )
    const counts = []
    for (const seller of sellers) {
      const leads = await instances[0].request(
        'GET',
        `/leads?assigned_to=${seller}&channel=web&limit=1`,
        undefined,
        adminToken,
      )
      counts.push(leads.body.total)
    }
    assert.deepEqual(counts, [10, 10, 10])
  })
})
