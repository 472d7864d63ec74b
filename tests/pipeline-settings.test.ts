import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

const WORKDAY = [{ from: '09:00', to: '18:00' }]
const DEFAULTS = {
  stale_after: { new: null, contacted: null, quoted: null },
  business_hours: {
    monday: WORKDAY,
    tuesday: WORKDAY,
    wednesday: WORKDAY,
    thursday: WORKDAY,
    friday: WORKDAY,
    saturday: [],
    sunday: [],
  },
  holidays: [],
  response_target: 'PT1H',
  lost_reasons: ['price', 'competitor', 'no_response', 'not_interested', 'other'],
  stage_probability: { new: 0.1, contacted: 0.3, quoted: 0.6 },
  time_zone: 'Europe/Madrid',
}

const SETTINGS = {
  stale_after: { new: 'PT2H', contacted: 'P3D', quoted: null },
  business_hours: {
    ...DEFAULTS.business_hours,
    monday: [
      { from: '08:00', to: '13:00' },
      { from: '14:00', to: '24:00' },
    ],
    saturday: [{ from: '09:00', to: '13:00' }],
  },
  holidays: ['2026-12-25', '2027-01-01'],
  response_target: 'PT30M',
  time_zone: 'America/Caracas',
  lost_reasons: ['Precio', 'Otro'],
  stage_probability: { new: 0, contacted: 0.25, quoted: 1 },
}

describe('pipeline settings', () => {
  let ctx: TestContext
  let sales: TestUser
  let management: TestUser

  before(async () => {
    ctx = await startTestContext({ DEFAULT_TIME_ZONE: 'Europe/Madrid' })
    sales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
  })
  after(() => ctx.close())

  it('has documented defaults, in DEFAULT_TIME_ZONE, that anyone signed in reads', async () => {
    for (const token of [ctx.adminToken, sales.token, management.token]) {
      const response = await ctx.as(token, 'GET', '/pipeline-settings')
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(response.json(), DEFAULTS)
    }
    assert.equal((await ctx.as(undefined, 'GET', '/pipeline-settings')).statusCode, 401)
  })

  it('is replaced by an admin only, with an audit row of what changed', async () => {
    for (const token of [sales.token, management.token]) {
      const refused = await ctx.as(token, 'PUT', '/pipeline-settings', SETTINGS)
      assert.equal(refused.statusCode, 403)
    }
    assert.deepEqual((await ctx.auditRows('pipeline_settings')).length, 0)

    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', SETTINGS)
    assert.equal(put.statusCode, 200, put.body)
    assert.deepEqual(put.json(), SETTINGS)
    assert.deepEqual((await ctx.as(sales.token, 'GET', '/pipeline-settings')).json(), SETTINGS)
    // The same settings again change nothing.
    assert.equal((await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', SETTINGS)).statusCode, 200)
    const audit = await ctx.auditRows('pipeline_settings')
    assert.equal(audit.length, 1)
    assert.equal(audit[0]?.record_id, 1)
    assert.equal(audit[0]?.action, 'update')
    assert.equal(audit[0]?.username, 'admin')
    assert.deepEqual(audit[0]?.new_values, SETTINGS)
    assert.deepEqual(audit[0]?.old_values, { ...DEFAULTS, time_zone: null })
  })

  it('returns a field left out, and a null time_zone, to its default', async () => {
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
      holidays: ['2026-12-24'],
      time_zone: null,
    })
    assert.equal(put.statusCode, 200, put.body)
    assert.deepEqual(put.json(), { ...DEFAULTS, holidays: ['2026-12-24'] })
    const audit = (await ctx.auditRows('pipeline_settings')).at(-1)
    assert.deepEqual(Object.keys(audit?.new_values ?? {}).sort(), [
      'business_hours',
      'holidays',
      'lost_reasons',
      'response_target',
      'stage_probability',
      'stale_after',
      'time_zone',
    ])
    assert.equal(audit?.new_values?.time_zone, null)
  })

  it('refuses bad durations, hours, dates and zones, naming the field', async () => {
    const monday = (hours: unknown) => ({ business_hours: { ...DEFAULTS.business_hours, monday: hours } })
    const cases: Array<[Record<string, unknown>, string | string[]]> = [
      [{ stale_after: { new: 'two hours', contacted: null, quoted: null } }, 'stale_after.new'],
      [{ stale_after: { new: null, contacted: 'PT0S', quoted: null } }, 'stale_after.contacted'],
      [{ stale_after: { new: null, contacted: null, quoted: 'PT-1H' } }, 'stale_after.quoted'],
      [{ stale_after: { new: null, contacted: null, quoted: null, closed: 'P1D' } }, 'stale_after.closed'],
      [{ response_target: 'P1Q' }, 'response_target'],
      [{ response_target: '1h' }, 'response_target'],
      [{ response_target: 'PT2H-30M' }, 'response_target'],
      [monday([{ from: '18:00', to: '09:00' }]), 'business_hours.monday.0'],
      [monday([{ from: '09:00', to: '09:00' }]), 'business_hours.monday.0'],
      [
        monday([
          { from: '09:00', to: '13:00' },
          { from: '12:00', to: '18:00' },
        ]),
        'business_hours.monday.1',
      ],
      [
        monday([
          { from: '14:00', to: '18:00' },
          { from: '09:00', to: '13:00' },
        ]),
        'business_hours.monday.1',
      ],
      [monday([{ from: '9:00', to: '18:00' }]), 'business_hours.monday.0.from'],
      [monday([{ from: '09:00', to: '24:30' }]), 'business_hours.monday.0.to'],
      [
        {
          business_hours: { monday: WORKDAY, tuesday: WORKDAY, wednesday: WORKDAY, thursday: WORKDAY, friday: WORKDAY },
        },
        ['business_hours.saturday', 'business_hours.sunday'],
      ],
      [{ holidays: ['2026-02-30'] }, 'holidays.0'],
      [{ holidays: ['25/12/2026'] }, 'holidays.0'],
      [{ time_zone: 'Mars/Olympus' }, 'time_zone'],
    ]
    for (const [body, field] of cases) {
      const response = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', body)
      assert.equal(response.statusCode, 400, `${JSON.stringify(body)}: ${response.body}`)
      assert.deepEqual(
        problemOf(response).errors?.map((error) => error.field),
        Array.isArray(field) ? field : [field],
        JSON.stringify(body),
      )
    }
    assert.deepEqual((await ctx.as(ctx.adminToken, 'GET', '/pipeline-settings')).json().holidays, ['2026-12-24'])
  })
})
