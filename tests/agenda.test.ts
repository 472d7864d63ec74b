import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { localDay } from '../src/time-zone.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'

type Item = { id: number }
type List = { items: Item[]; total: number }
type Agenda = Record<'overdue_tasks' | 'tasks_today' | 'awaiting_first_response' | 'stale_leads', List>

const HOUR = 3_600_000
const ZONE = 'Pacific/Kiritimati'

/** The list whose answer each part of the agenda must give, sorted as the agenda sorts when it can be. */
const FILTERS = {
  overdue_tasks: '/tasks?assigned_to=me&status=overdue&sort=due_at',
  tasks_today: '/tasks?assigned_to=me&status=due_today&sort=due_at',
  awaiting_first_response: '/leads?assigned_to=me&awaiting_first_response=true&sort=created_at',
  stale_leads: '/leads?assigned_to=me&stale=true',
} as const

describe('GET /me/agenda', () => {
  let ctx: TestContext
  let seller: TestUser
  let other: TestUser
  let management: TestUser
  let adminId: number
  let clientId: number

  const task = async (token: string, dueAt: Date, fields: Record<string, unknown> = {}) => {
    const response = await ctx.as(token, 'POST', '/tasks', { title: 'Llamar', due_at: dueAt.toISOString(), ...fields })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as Item
  }
  const agenda = async (token: string) => {
    const response = await ctx.as(token, 'GET', '/me/agenda')
    assert.equal(response.statusCode, 200, response.body)
    return response.json() as Agenda
  }
  const listed = async (token: string, url: string) => {
    const response = await ctx.as(token, 'GET', `${url}&limit=100`)
    assert.equal(response.statusCode, 200, response.body)
    return response.json() as List
  }
  const age = (id: number) =>
    ctx.db
      .updateTable('leads')
      .set({ status_changed_at: sql`status_changed_at - interval '2 hours'` })
      .where('id', '=', id)
      .execute()

  /** Each part of the caller's agenda holds what its filter lists: the same total, the first ten of it. */
  const assertAgendaMatchesFilters = async (token: string) => {
    const answer = await agenda(token)
    for (const [part, url] of Object.entries(FILTERS) as Array<[keyof Agenda, string]>) {
      const list = await listed(token, url)
      const ids = answer[part].items.map((item) => item.id)
      assert.equal(answer[part].total, list.total, part)
      assert.equal(ids.length, Math.min(list.total, 10), part)
      const expected = list.items.map((item) => item.id)
      if (part === 'stale_leads')
        assert.ok(
          ids.every((id) => expected.includes(id)),
          part,
        )
      else assert.deepEqual(ids, expected.slice(0, 10), part)
    }
    return answer
  }

  before(async () => {
    ctx = await startTestContext()
    seller = await ctx.createUser('sales', { time_zone: ZONE })
    other = await ctx.createUser('sales')
    management = await ctx.createUser('management')
    adminId = (await ctx.as(ctx.adminToken, 'GET', '/auth/me')).json().id
    clientId = (await createClient(ctx)).id
    const put = await ctx.as(ctx.adminToken, 'PUT', '/pipeline-settings', {
      stale_after: { new: 'PT1H', contacted: 'PT1H', quoted: null },
    })
    assert.equal(put.statusCode, 200, put.body)
  })
  after(() => ctx.close())

  it('is empty for a caller with nothing to do, and refused without a token', async () => {
    const empty = { items: [], total: 0 }
    assert.deepEqual(await agenda(management.token), {
      overdue_tasks: empty,
      tasks_today: empty,
      awaiting_first_response: empty,
      stale_leads: empty,
    })
    assert.equal((await ctx.as(undefined, 'GET', '/me/agenda')).statusCode, 401)
  })

  it('lists the caller’s own tasks and leads, as the filters do, ten at most with the total', async () => {
    const now = Date.now()
    // Twelve tasks overdue since before today, the latest due made first: the order is not that of creation.
    const overdue: Item[] = []
    for (let index = 1; index <= 12; index++)
      overdue.unshift(await task(seller.token, new Date(now - (24 + index) * HOUR)))
    const today = localDay(new Date(), ZONE)
    const dueToday = await task(seller.token, new Date(Math.max(now + 60_000, today.end.getTime() - 1000)))
    const done = await task(seller.token, new Date(now - HOUR))
    assert.equal((await ctx.as(seller.token, 'POST', `/tasks/${done.id}/complete`)).statusCode, 200)
    await task(other.token, new Date(now - HOUR))

    const waiting = await createLead(ctx, { client_id: clientId }, seller.token)
    const stale = await createLead(ctx, { client_id: clientId }, seller.token)
    const answered = await createLead(ctx, { client_id: clientId }, seller.token)
    const moved = await ctx.as(seller.token, 'PATCH', `/leads/${answered.id}/status`, { status: 'contacted' })
    assert.equal(moved.statusCode, 200, moved.body)
    await age(stale.id)
    await age(answered.id)
    const othersLead = await createLead(ctx, { client_id: clientId }, other.token)
    await age(othersLead.id)
    const adminsLead = await createLead(ctx, { client_id: clientId, assigned_to: adminId })
    await age(adminsLead.id)

    const answer = await assertAgendaMatchesFilters(seller.token)
    assert.deepEqual(
      answer.overdue_tasks.items.map((item) => item.id),
      overdue.slice(0, 10).map((item) => item.id),
    )
    assert.equal(answer.overdue_tasks.total, 12)
    assert.deepEqual(
      answer.tasks_today.items.map((item) => item.id),
      [dueToday.id],
    )
    assert.deepEqual(
      answer.awaiting_first_response.items.map((item) => item.id),
      [waiting.id, stale.id],
    )
    assert.deepEqual(answer.stale_leads.items.map((item) => item.id).sort(), [stale.id, answered.id].sort())

    // Admin and management see their own assigned leads here, not everyone's.
    const admins = await assertAgendaMatchesFilters(ctx.adminToken)
    assert.deepEqual(
      admins.stale_leads.items.map((item) => item.id),
      [adminsLead.id],
    )
    assert.deepEqual(
      (await assertAgendaMatchesFilters(other.token)).stale_leads.items.map((item) => item.id),
      [othersLead.id],
    )
    await assertAgendaMatchesFilters(management.token)
  })

  it('filters leads on awaiting_first_response both ways, and refuses a bad value', async () => {
    const waiting = (await listed(ctx.adminToken, '/leads?awaiting_first_response=true')).items.map((lead) => lead.id)
    const others = (await listed(ctx.adminToken, '/leads?awaiting_first_response=false')).items.map((lead) => lead.id)
    const all = await listed(ctx.adminToken, '/leads?sort=created_at')
    assert.equal(waiting.length + others.length, all.total)
    assert.ok(waiting.length > 0 && others.length > 0)
    assert.ok(waiting.every((id) => !others.includes(id)))
    const bad = await ctx.as(ctx.adminToken, 'GET', '/leads?awaiting_first_response=maybe')
    assert.equal(bad.statusCode, 400)
    assert.equal(problemOf(bad).errors?.[0]?.field, 'awaiting_first_response')
  })
})
