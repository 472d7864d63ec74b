import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startWorkers, type Workers } from '../src/jobs/worker.js'
import { ADMIN, mode, serverEnvironment, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { createClient, createLead } from './helpers/fixtures.js'
import { type MailSink, type Receiver, startMailSink, startReceiver, waitFor } from './helpers/peers.js'
import { type ServerProcess, startServer } from './helpers/server.js'

const PUBLIC_URL = 'https://crm.example.com'
const WORKER_ENV = {
  PUBLIC_URL,
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_TIMEOUT_MS: '1000',
  WORKER_POLL_MS: '50',
  JOB_RETRY_DELAYS_SECONDS: '0.05,0.1,0.2',
}

/** An instant `ms` from now, as the API takes it. */
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()

const toOf = (mail: MailSink['mails'][number]) =>
  (Array.isArray(mail.to) ? mail.to : [mail.to]).map((to) => to?.text).join(',')

/** The task.due requests the receiver got for this task. */
const hooksFor = (receiver: Receiver, taskId: number) =>
  receiver.received.filter((request) => request.json?.type === 'task.due' && request.json.data.id === taskId)

/** The reminder mails of this task (each task of these tests has a title of its own). */
const mailsFor = (sink: MailSink, title: string) =>
  sink.mails.filter((mail) => mail.subject === `Reminder: ${title}` || mail.subject === `Recordatorio: ${title}`)

describe('task reminders in one process', () => {
  let ctx: TestContext
  let sink: MailSink
  let receiver: Receiver
  let ann: TestUser
  let jose: TestUser
  let clientId: number
  let secondWorkers: Workers

  before(async () => {
    sink = await startMailSink()
    receiver = await startReceiver()
    ctx = await startTestContext({ ...WORKER_ENV, SMTP_URL: sink.url, MAIL_FROM: 'CRM <crm@example.com>' })
    // A second set of workers on the same database, as another instance's would claim beside the first.
    secondWorkers = startWorkers(ctx.db, ctx.config, ctx.app.log)
    ann = await ctx.createUser('sales', {
      email: 'ann@example.com',
      full_name: 'Ann Lee',
      locale: 'en',
      time_zone: 'America/Caracas',
    })
    jose = await ctx.createUser('sales', { email: 'jose@example.com', full_name: 'José Díaz' })
    clientId = (await createClient(ctx)).id
    const hook = await ctx.as(ctx.adminToken, 'POST', '/webhooks', {
      url: `${receiver.url}/due`,
      events: ['task.due'],
    })
    assert.equal(hook.statusCode, 201, hook.body)
  })
  after(async () => {
    await secondWorkers.stop()
    await ctx.close()
    await sink.close()
    await receiver.close()
  })

  // biome-ignore lint/suspicious/noExplicitAny: the task as the API answers it
  const newTask = async (fields: Record<string, unknown>): Promise<any> => {
    const response = await ctx.as(ctx.adminToken, 'POST', '/tasks', fields)
    assert.equal(response.statusCode, 201, response.body)
    return response.json()
  }
  const dueEvents = (taskId: number) =>
    ctx.db
      .selectFrom('events')
      .select(['occurred_at', 'data'])
      .where('type', '=', 'task.due')
      .where('resource_key', '=', `task:${taskId}`)
      .execute()
  /** Lets the receiver and the mail sink get what else was on its way. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300))

  it('mails the assignee once at remind_at, in their language and zone, and posts task.due once', async () => {
    const lead = await createLead(ctx, { client_id: clientId, assigned_to: ann.id })
    const remindAt = inMs(1500)
    const dueAt = '2030-01-15T15:00:00.000Z'
    const onLead = await newTask({
      title: 'Call Ann back',
      due_at: dueAt,
      remind_at: remindAt,
      lead_id: lead.id,
      assigned_to: ann.id,
    })
    // No remind_at: the reminder falls due at due_at.
    const alone = await newTask({ title: 'Send the quote', due_at: inMs(1500), assigned_to: jose.id })
    const unassigned = await newTask({ title: 'Nobody’s', due_at: inMs(1500), assigned_to: null })
    // A zone the database holds but the runtime does not know (the API refuses one) reads in the default zone.
    await ctx.db.updateTable('users').set({ time_zone: 'Mars/Olympus_Mons' }).where('id', '=', jose.id).execute()

    await waitFor('the three webhooks and the two mails', () => {
      const hooks = [onLead, alone, unassigned].every((task) => hooksFor(receiver, task.id).length > 0)
      return hooks && mailsFor(sink, 'Call Ann back').length > 0 && mailsFor(sink, 'Send the quote').length > 0
    })
    await settle()

    const [event] = await dueEvents(onLead.id)
    assert.ok(event, 'a task.due event')
    assert.ok(event.occurred_at.getTime() >= Date.parse(remindAt), 'written at remind_at, not before')
    const [request, ...more] = hooksFor(receiver, onLead.id)
    assert.equal(more.length, 0, 'one webhook request')
    assert.equal(request?.json.data.object.title, 'Call Ann back')
    assert.deepEqual(request?.json.data.old, null)
    assert.deepEqual(request?.json.data.new, { reminder_at: remindAt })
    assert.equal(request?.json.actor.type, 'system')
    assert.equal(hooksFor(receiver, alone.id).length, 1)
    assert.equal(hooksFor(receiver, alone.id)[0]?.json.data.new.reminder_at, alone.due_at)
    assert.equal(hooksFor(receiver, unassigned.id).length, 1)

    const [english, ...moreMails] = mailsFor(sink, 'Call Ann back')
    assert.equal(moreMails.length, 0, 'one mail')
    assert.equal(english && toOf(english), 'ann@example.com')
    assert.match(english?.text ?? '', /Your task #\d+ "Call Ann back" is due Tuesday, January 15, 2030 at 11:00/)
    assert.match(english?.text ?? '', new RegExp(`Open the lead: ${PUBLIC_URL}/dashboard/leads/${lead.id}\\?lang=en`))
    const spanish = mailsFor(sink, 'Send the quote')
    assert.equal(spanish.length, 1)
    assert.equal(spanish[0] && toOf(spanish[0]), 'jose@example.com')
    assert.match(spanish[0]?.text ?? '', new RegExp(`Ver la tarea: ${PUBLIC_URL}/tasks/${alone.id}`))
    assert.match(spanish[0]?.text ?? '', /Tu tarea #\d+ «Send the quote» vence el .* \(America\/Caracas\)\./)
    await ctx.db.updateTable('users').set({ time_zone: null }).where('id', '=', jose.id).execute()
    assert.equal(mailsFor(sink, 'Nobody’s').length, 0, 'an unassigned task mails nobody')
  })

  it('sends nothing for a task done, deleted, set in the past or on a trashed lead, and moved later only at the new time', async () => {
    const done = await newTask({ title: 'Done early', due_at: inMs(1000), assigned_to: ann.id })
    const deleted = await newTask({ title: 'Deleted', due_at: inMs(1000), assigned_to: ann.id })
    const moved = await newTask({ title: 'Moved', due_at: inMs(60_000), remind_at: inMs(1000), assigned_to: ann.id })
    const past = await newTask({ title: 'Already past', due_at: inMs(-60_000), assigned_to: ann.id })
    const trashedLead = await createLead(ctx, { client_id: clientId })
    const trashed = await newTask({
      title: 'Trashed',
      due_at: inMs(1000),
      lead_id: trashedLead.id,
      assigned_to: ann.id,
    })
    // Falls due after the others: once it is out, the workers have passed their times.
    const marker = await newTask({ title: 'Marker', due_at: inMs(1300), assigned_to: ann.id })

    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/tasks/${done.id}/complete`)).statusCode, 200)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/tasks/${deleted.id}`)).statusCode, 204)
    assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/leads/${trashedLead.id}`)).statusCode, 204)
    const newTime = inMs(2500)
    const patched = await ctx.as(ctx.adminToken, 'PATCH', `/tasks/${moved.id}`, { remind_at: newTime })
    assert.equal(patched.statusCode, 200)

    await waitFor('the marker’s webhook', () => hooksFor(receiver, marker.id).length > 0)
    for (const task of [done, deleted, moved, past, trashed]) {
      assert.deepEqual(await dueEvents(task.id), [], `no task.due for "${task.title}"`)
    }
    await waitFor('the moved task’s webhook', () => hooksFor(receiver, moved.id).length > 0)
    await settle()
    const [event, ...more] = await dueEvents(moved.id)
    assert.equal(more.length, 0)
    assert.ok(event && event.occurred_at.getTime() >= Date.parse(newTime), 'at the new time')
    assert.equal(hooksFor(receiver, moved.id)[0]?.json.data.new.reminder_at, newTime)
    assert.equal(mailsFor(sink, 'Moved').length, 1)
    for (const title of ['Done early', 'Deleted', 'Already past', 'Trashed']) {
      assert.equal(mailsFor(sink, title).length, 0, `no mail for "${title}"`)
    }

    // Restored after its time, the trashed lead's task is not reminded late.
    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/leads/${trashedLead.id}/restore`)).statusCode, 200)
    const marker2 = await newTask({ title: 'Marker 2', due_at: inMs(300), assigned_to: ann.id })
    await waitFor('the second marker’s webhook', () => hooksFor(receiver, marker2.id).length > 0)
    assert.deepEqual(await dueEvents(trashed.id), [])
  })

  it('does not remind a reopened task again for the same time, and does when its time moves', async () => {
    const task = await newTask({ title: 'Reopened', due_at: inMs(60_000), remind_at: inMs(600), assigned_to: jose.id })
    await waitFor('the first reminder', () => hooksFor(receiver, task.id).length > 0)
    // A change that keeps the reminder time does not re-arm it.
    assert.equal((await ctx.as(ctx.adminToken, 'PATCH', `/tasks/${task.id}`, { title: 'Reopened' })).statusCode, 200)
    assert.equal((await ctx.as(ctx.adminToken, 'PATCH', `/tasks/${task.id}`, { notes: 'n' })).statusCode, 200)
    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/tasks/${task.id}/complete`)).statusCode, 200)
    assert.equal((await ctx.as(ctx.adminToken, 'POST', `/tasks/${task.id}/reopen`)).statusCode, 200)
    const marker = await newTask({ title: 'Marker 3', due_at: inMs(300), assigned_to: ann.id })
    await waitFor('the marker’s webhook', () => hooksFor(receiver, marker.id).length > 0)
    assert.equal((await dueEvents(task.id)).length, 1, 'still one reminder')

    const later = inMs(400)
    assert.equal((await ctx.as(ctx.adminToken, 'PATCH', `/tasks/${task.id}`, { remind_at: later })).statusCode, 200)
    await waitFor('the second reminder', () => hooksFor(receiver, task.id).length > 1)
    await waitFor('its two mails', () => mailsFor(sink, 'Reopened').length > 1)
    await settle()
    assert.deepEqual(
      hooksFor(receiver, task.id).map((request) => request.json.data.new.reminder_at),
      [task.remind_at, later],
    )
    assert.equal(mailsFor(sink, 'Reopened').length, 2)
  })
})

interface Api {
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
  request(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>
}

function httpApi(url: string): Api {
  return {
    async request(method, path, body, token) {
      const response = await checkedFetch(`${url}${path}`, {
        method,
        headers: {
          ...(token && { authorization: `Bearer ${token}` }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      })
      const text = await response.text()
      return { status: response.status, body: text ? JSON.parse(text) : undefined }
    },
  }
}

describe('task reminders across processes', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    const failures: unknown[] = []
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => failures.push(error))
    if (failures.length > 0) throw failures[0]
  })

  // On PostgreSQL two instances share the database; the embedded database has one owner, so there
  // the one instance is killed and restarted.
  const title =
    mode === 'server' ? 'with two instances, one killed and restarted' : 'with one instance killed and restarted'
  it(`sends each reminder once ${title}`, async () => {
    const sink = await startMailSink()
    cleanups.push(() => sink.close())
    const receiver = await startReceiver()
    cleanups.push(() => receiver.close())
    const environment = await serverEnvironment()
    cleanups.push(() => environment.cleanup())
    const env = { ...environment.env, ...WORKER_ENV, SMTP_URL: sink.url }
    const servers: ServerProcess[] = []
    const start = async () => {
      const server = await startServer(env)
      servers.push(server)
      cleanups.push(async () => assert.equal(await server.stop(), 0, 'a clean stop'))
      return server
    }
    const first = await startServer(env)
    cleanups.push(async () => first.child.kill('SIGKILL'))
    if (mode === 'server') await start()

    const api = httpApi(first.url)
    const login = await api.request('POST', '/auth/login', ADMIN)
    const token = login.body.access_token
    const user = await api.request(
      'POST',
      '/users',
      { username: 'seller', password: 'seller-password-1', role: 'sales', email: 'seller@example.com', locale: 'en' },
      token,
    )
    assert.equal(user.status, 201, JSON.stringify(user.body))
    const hook = await api.request('POST', '/webhooks', { url: `${receiver.url}/due`, events: ['task.due'] }, token)
    assert.equal(hook.status, 201, JSON.stringify(hook.body))
    const COUNT = 4
    const ids: number[] = []
    for (let index = 0; index < COUNT; index++) {
      const task = await api.request(
        'POST',
        '/tasks',
        { title: `Across ${index}`, due_at: inMs(2000), assigned_to: user.body.id },
        token,
      )
      assert.equal(task.status, 201, JSON.stringify(task.body))
      ids.push(task.body.id)
    }
    first.child.kill('SIGKILL')
    await first.exited
    await start()

    await waitFor(
      'every reminder mailed and posted',
      () => ids.every((id) => hooksFor(receiver, id).length > 0) && sink.mails.length >= COUNT,
      30_000,
    )
    // A little longer, so that a duplicate on its way would arrive.
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const id of ids) assert.equal(hooksFor(receiver, id).length, 1, `task ${id}: one webhook request`)
    assert.deepEqual(
      sink.mails.map((mail) => mail.subject).sort(),
      ids.map((_, index) => `Reminder: Across ${index}`),
      'one mail per task',
    )
    assert.ok(sink.mails.every((mail) => toOf(mail) === 'seller@example.com'))
    assert.equal(servers.length, mode === 'server' ? 2 : 1)
  })
})
