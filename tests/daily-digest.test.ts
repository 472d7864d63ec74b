import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startWorkers, type Workers } from '../src/jobs/worker.js'
import { renderMail } from '../src/notifications/templates.js'
import { startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'
import { type MailSink, startMailSink, waitFor } from './helpers/peers.js'

const PUBLIC_URL = 'https://crm.example.com'

const toOf = (mail: MailSink['mails'][number]) =>
  (Array.isArray(mail.to) ? mail.to : [mail.to]).map((to) => to?.text).join(',')

describe('the morning digest', () => {
  let ctx: TestContext
  let sink: MailSink
  let workers: Workers | undefined
  // The workers' clock, which the test moves; the system's stays where it is.
  let now = new Date('2026-12-08T12:30:00Z')
  let ann: TestUser
  let kenji: TestUser
  let quiet: TestUser
  let off: TestUser
  let overdueTitle: string

  const start = () => {
    workers = startWorkers(ctx.db, ctx.config, ctx.app.log, { clock: () => now })
  }
  const stop = async () => {
    await workers?.stop()
    workers = undefined
  }
  /** Lets the workers run a few rounds at the clock's current reading. */
  const settle = async () => {
    const planned = async () =>
      ctx.db
        .selectFrom('notifications')
        .select(({ fn }) => fn.countAll<string>().as('count'))
        .where('kind', '=', 'daily_digest')
        .where('state', 'in', ['pending', 'sending'])
        .executeTakeFirstOrThrow()
    await new Promise((resolve) => setTimeout(resolve, 400))
    await waitFor('planned digests to be sent', async () => Number((await planned()).count) === 0)
  }
  const digestsOf = (user: TestUser) =>
    sink.mails.filter(
      (mail) => toOf(mail).includes(`${user.username}@example.com`) && /^(Your day|Tu día):/.test(mail.subject ?? ''),
    )

  before(async () => {
    sink = await startMailSink()
    // No workers of the app's own: only the ones with the test's clock plan digests.
    ctx = await startTestContext({
      WORKERS: 'false',
      WORKER_POLL_MS: '50',
      DIGEST_HOUR: '8',
      PUBLIC_URL,
      SMTP_URL: sink.url,
      MAIL_FROM: 'CRM <crm@example.com>',
    })
    const withEmail = async (fields: Record<string, unknown>) => {
      const user = await ctx.createUser('sales', fields)
      const patch = await ctx.as(ctx.adminToken, 'PATCH', `/users/${user.id}`, {
        email: `${user.username}@example.com`,
      })
      assert.equal(patch.statusCode, 200, patch.body)
      return user
    }
    ann = await withEmail({ full_name: 'Ann Lee', locale: 'en', time_zone: 'America/Caracas' })
    kenji = await withEmail({ full_name: 'Kenji Sato', locale: 'es', time_zone: 'Asia/Tokyo' })
    quiet = await withEmail({ locale: 'en', time_zone: 'America/Caracas' })
    off = await withEmail({ locale: 'en', time_zone: 'America/Caracas' })
    for (const user of [ann, kenji, quiet]) {
      const on = await ctx.as(user.token, 'PATCH', '/auth/me/notifications', { daily_digest: true })
      assert.equal(on.statusCode, 200, on.body)
      assert.equal(on.json().daily_digest, true)
    }
    const clientId = (await createClient(ctx)).id
    overdueTitle = 'Call back <about> the quote'
    for (const user of [ann, kenji, off]) {
      const task = await ctx.as(user.token, 'POST', '/tasks', {
        title: overdueTitle,
        due_at: new Date(Date.now() - 3_600_000).toISOString(),
      })
      assert.equal(task.statusCode, 201, task.body)
      await createLead(ctx, { client_id: clientId }, user.token)
    }
  })

  after(async () => {
    await stop()
    await ctx?.close()
    await sink?.close()
  })

  it('goes out once per local day, during DIGEST_HOUR on each user’s clock, across a restart', async () => {
    // 08:30 in Caracas, 21:30 in Tokyo.
    start()
    await waitFor('Ann’s digest', () => digestsOf(ann).length === 1)
    await settle()
    // Later in the same hour, and after a restart within it: nothing more.
    now = new Date('2026-12-08T12:45:00Z')
    await settle()
    await stop()
    now = new Date('2026-12-08T12:59:00Z')
    start()
    await settle()
    assert.equal(digestsOf(ann).length, 1)
    assert.equal(digestsOf(kenji).length, 0)

    const [mail] = digestsOf(ann)
    assert.equal(mail?.subject, 'Your day: Tuesday, December 8, 2026')
    assert.match(mail?.text ?? '', /Overdue tasks \(1\):\n- #\d+ Call back <about> the quote \(/)
    assert.match(
      mail?.text ?? '',
      /Leads awaiting a first response \(1\):\n- #(\d+) .*: https:\/\/crm\.example\.com\/dashboard\/leads\/\1\?lang=en/,
    )
    assert.match(String(mail?.html), /Call back &lt;about&gt; the quote/)
    assert.doesNotMatch(String(mail?.html), /<about>/)

    // 08:10 on 9 December in Tokyo, 19:10 on the 8th in Caracas: Kenji's, in Spanish.
    now = new Date('2026-12-08T23:10:00Z')
    await waitFor('Kenji’s digest', () => digestsOf(kenji).length === 1)
    assert.equal(digestsOf(kenji)[0]?.subject, 'Tu día: miércoles, 9 de diciembre de 2026')
    assert.match(digestsOf(kenji)[0]?.text ?? '', /Tareas vencidas \(1\)/)
    await settle()
    assert.equal(digestsOf(ann).length, 1)

    // The next morning in Caracas: Ann's second.
    now = new Date('2026-12-09T12:05:00Z')
    await waitFor('Ann’s second digest', () => digestsOf(ann).length === 2)
    assert.equal(digestsOf(ann)[1]?.subject, 'Your day: Wednesday, December 9, 2026')
    await settle()
    assert.equal(digestsOf(kenji).length, 1)
    // Nothing waiting for the user with nothing to do, nor for the one who never asked.
    assert.equal(digestsOf(quiet).length, 0)
    assert.equal(digestsOf(off).length, 0)
  })
})

describe('the digest mail', () => {
  it('lists what is not shown as “and N more”, with a link to the dashboard', () => {
    const mail = renderMail('daily_digest', 'en', {
      publicUrl: PUBLIC_URL,
      recipientName: 'Ann',
      actorName: 'system',
      timeZone: 'America/Caracas',
      digest: {
        date: '2026-12-08',
        overdue_tasks: { total: 0, items: [] },
        tasks_today: {
          total: 12,
          items: [{ id: 5, title: 'Send the quote', due_at: '2026-12-08T18:00:00.000Z', lead_id: null }],
        },
        awaiting_first_response: { total: 0, items: [] },
        stale_leads: {
          total: 1,
          items: [{ id: 9, status: 'quoted', client: { contact_name: 'Ana', company_name: 'Acme' } }],
        },
      },
    })
    assert.equal(
      mail.text,
      [
        'Hello Ann,',
        '',
        'Here is what is waiting for you today.',
        '',
        'Tasks due today (12):',
        '- #5 Send the quote (Dec 8, 2026, 2:00 PM): https://crm.example.com/tasks/5',
        '- and 11 more: https://crm.example.com/dashboard?lang=en',
        '',
        'Stale leads (1):',
        '- #9 Ana (Acme) (quoted): https://crm.example.com/dashboard/leads/9?lang=en',
        '',
        'Open the dashboard: https://crm.example.com/dashboard?lang=en',
        '',
      ].join('\n'),
    )
    assert.match(mail.html, /<h2>Tasks due today \(12\)<\/h2>/)
  })
})
