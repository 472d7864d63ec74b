import assert from 'node:assert/strict'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { ARTIFACTS, browserMissing, launchChromium } from './helpers/browser.js'
import { ADMIN, type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { freePort, root, type ServerProcess, startServer } from './helpers/server.js'

const STATUS_LABELS = {
  new: 'Nuevo',
  contacted: 'Contactado',
  quoted: 'Cotizado',
  closed: 'Cerrado',
  discarded: 'Descartado',
}
const SALES = { username: 'vendedora', password: 'vendedora-123', full_name: 'Valeria Pérez' }
const OTHER_SALES = { username: 'otro-vendedor', password: 'otro-vendedor-123' }

interface ResponseTime {
  median_seconds: number | null
  p90_seconds: number | null
  within_target_ratio: number | null
  waiting: number
}

interface Stats {
  total: number
  by_status: Record<keyof typeof STATUS_LABELS, number>
  by_channel: Record<string, number>
  response_time: ResponseTime
  by_assignee: Array<{ user_id: number | null; response_time: ResponseTime }>
}

/** A small API client for setting up data and reading the expected figures. */
function api(base: string) {
  const call = async <T>(token: string | undefined, method: string, path: string, body?: unknown): Promise<T> => {
    const response = await checkedFetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    })
    const json = await response.json()
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`)
    return json as T
  }
  return {
    call,
    login: async (user: { username: string; password: string }) =>
      (await call<{ access_token: string }>(undefined, 'POST', '/auth/login', user)).access_token,
    stats: (token: string, query: string) => call<Stats>(token, 'GET', `/leads/stats?${query}`),
  }
}

/** Records the text each chart draws on its canvas, from its last clearing (a new frame) on. */
const RECORD_CANVAS_TEXT = `(() => {
  const drawn = new Map()
  window.canvasText = () => [...drawn.values()].flat()
  const { clearRect, fillText } = CanvasRenderingContext2D.prototype
  CanvasRenderingContext2D.prototype.clearRect = function (...args) {
    drawn.set(this, [])
    return clearRect.apply(this, args)
  }
  CanvasRenderingContext2D.prototype.fillText = function (text, ...args) {
    if (!drawn.has(this)) drawn.set(this, [])
    drawn.get(this).push(String(text))
    return fillText.call(this, text, ...args)
  }
})()`

interface Setup {
  server: ServerProcess
  client: ReturnType<typeof api>
  adminToken: string
  sales: { id: number }
  /** The lead ids, in the order of the plan. */
  leads: number[]
}

describe('the dashboard at /dashboard', () => {
  let environment: ServerEnvironment | undefined
  let server: ServerProcess | undefined
  let browser: Browser | undefined
  let setup: Promise<Setup> | undefined

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.stop()
    await environment?.cleanup()
  })

  /** One server, with users and leads all created today, for every test of this file. */
  const prepared = () => {
    setup ??= (async () => {
      environment = await serverEnvironment()
      server = await startServer({ ...environment.env, PORT: String(await freePort()) })
      const client = api(server.url)
      const adminToken = await client.login(ADMIN)
      const sales = await client.call<{ id: number }>(adminToken, 'POST', '/users', { ...SALES, role: 'sales' })
      // Leads across channels, statuses and sellers: the sales user owns some of them only.
      const plan = [
        ['web', 'new', sales.id],
        ['web', 'closed', sales.id],
        ['whatsapp', 'quoted', sales.id],
        ['whatsapp', 'closed', null],
        ['whatsapp', 'discarded', null],
        ['instagram', 'contacted', null],
        ['manual', 'new', null],
      ] as const
      const leads: number[] = []
      for (const [index, [channel, status, assignee]] of plan.entries()) {
        const owner = await client.call<{ id: number }>(adminToken, 'POST', '/clients', {
          contact_name: `Cliente ${index}`,
          phone: `+58414${String(3_000_000 + index)}`,
        })
        const lead = await client.call<{ id: number }>(adminToken, 'POST', '/leads', {
          client_id: owner.id,
          channel,
          status,
          assigned_to: assignee,
          ...(status === 'discarded' && { lost_reason: 'price' }),
        })
        leads.push(lead.id)
      }
      // One unassigned lead answered by a call: a first response to show; and one task of the admin's, overdue.
      await client.call(adminToken, 'POST', `/leads/${leads[6]}/activities`, { type: 'call', body: 'Atendido' })
      await client.call(adminToken, 'POST', '/tasks', {
        title: 'Llamar a Cliente 6',
        due_at: new Date(Date.now() - 3_600_000).toISOString(),
        lead_id: leads[6],
      })
      browser = await launchChromium()
      await mkdir(ARTIFACTS, { recursive: true })
      return { server, client, adminToken, sales, leads }
    })()
    return setup
  }

  /** A new tab; `guarded` runs checks in it, and fails on a console error, a page error or a CSP violation. */
  async function newPage(viewport: { width: number; height: number }) {
    assert.ok(browser)
    const page = await browser.newPage({ viewport })
    page.setDefaultTimeout(15_000)
    const problems: string[] = []
    const log: string[] = []
    page.on('console', (message) => {
      log.push(`console.${message.type()}: ${message.text()}`)
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`)
    })
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    // CSP violations reported by the page itself (an init script runs outside the page's CSP).
    // (Code for the page is written as strings: the tests compile without the DOM's types.)
    await page.addInitScript(`document.addEventListener('securitypolicyviolation', (event) =>
      console.error('CSP violation: ' + event.violatedDirective + ' ' + event.blockedURI))`)
    /** Runs `check`; the console errors `expected` matches (say, a 404 the page is about) are no problem. */
    const guarded = async (name: string, check: () => Promise<void>, expected?: RegExp) => {
      try {
        await check()
        assert.deepEqual(
          problems.filter((problem) => !expected?.test(problem)),
          [],
          'no console error and no CSP violation',
        )
      } catch (error) {
        await page.screenshot({ path: join(ARTIFACTS, `${name}-failure.png`), fullPage: true }).catch(() => {})
        if (error instanceof Error) error.message += `\nbrowser log:\n${[...problems, ...log].join('\n') || '(empty)'}`
        throw error
      } finally {
        await page.close().catch(() => {})
      }
    }
    return { page, guarded, problems: () => [...problems] }
  }

  it('shows /leads/stats as people read it, with filters in the URL, for admin and sales alike', {
    timeout: 180_000,
    skip: browserMissing,
  }, async () => {
    const { server, client, adminToken } = await prepared()

    // Hidden from the OpenAPI document like /docs; of uPlot's package only the two files the page loads.
    const openapi = await client.call<{ paths: object }>(undefined, 'GET', '/openapi.json')
    assert.deepEqual(
      Object.keys(openapi.paths).filter((path) => path.startsWith('/dashboard')),
      [],
    )
    for (const [path, status] of [
      ['/dashboard/vendor/uplot/uPlot.esm.js', 200],
      ['/dashboard/vendor/uplot/uPlot.d.ts', 404],
      ['/dashboard/vendor/uplot/../package.json', 404],
    ] as const) {
      assert.equal((await checkedFetch(`${server.url}${path}`)).status, status, path)
    }

    const { page, guarded } = await newPage({ width: 1280, height: 900 })
    await guarded('dashboard', async () => {
      const today = new Date().toISOString().slice(0, 10)
      const weekAgo = new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10)
      const range = `created_from=${weekAgo}&created_to=${today}`
      const response = await page.goto(`${server.url}/dashboard?${range}`)
      assert.equal(response?.status(), 200)

      await signIn(page, ADMIN)
      const figures = await client.stats(adminToken, range)
      await expectFigures(page, figures)
      await page.locator('#kpi-overdue', { hasText: /^1$/ }).waitFor()
      const stale = await client.call<{ total: number }>(adminToken, 'GET', `/leads?stale=true&limit=1&${range}`)
      assert.equal(await page.locator('#kpi-stale').textContent(), String(stale.total))
      // The first responses: the answered lead is unassigned; the seller's leads still wait.
      assert.notEqual(figures.response_time.median_seconds, null)
      assert.match((await page.locator('#response-median').textContent()) ?? '', /^\d+\s+s$/)
      assert.match((await page.locator('#response-within').textContent()) ?? '', /^100\s%$/)
      const responseRows = await page.locator('#response-sellers tbody tr').allTextContents()
      assert.equal(responseRows.length, figures.by_assignee.length)
      assert.match(responseRows[1] ?? '', /^Valeria Pérezsin respuestassin respuestassin respuestas\d+$/)
      // Sellers by their names, in the table and in the filter.
      const sellers = await page.locator('#sellers tbody th').allTextContents()
      assert.deepEqual(sellers, ['Sin asignar', 'Valeria Pérez'])
      assert.equal(await page.locator('#assigned_to option', { hasText: 'Valeria Pérez' }).count(), 1)
      assert.equal(await page.locator('#per-day tbody tr').count(), 7, 'one row a day of the range')
      const storage = await page.evaluate('({ session: sessionStorage.length, local: localStorage.length })')
      assert.deepEqual(storage, { session: 1, local: 0 }, 'the token is kept for the tab only')

      // The channel filter: into the URL, and the figures follow.
      await page.selectOption('#channel', 'whatsapp')
      await page.getByRole('button', { name: 'Aplicar' }).click()
      await page.waitForURL(/channel=whatsapp/)
      assert.match(page.url(), new RegExp(range))
      const whatsapp = await client.stats(adminToken, `${range}&channel=whatsapp`)
      assert.equal(whatsapp.total, 3)
      await expectFigures(page, whatsapp)

      const violations = await accessibilityViolations(page)
      assert.deepEqual(violations, [], 'no serious or critical accessibility violation')
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-1280.png'), fullPage: true })

      await page.setViewportSize({ width: 375, height: 800 })
      // Two frames: the chart follows its container's new width.
      await page.evaluate(twoFrames)
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth')
      assert.ok(overflow <= 375, `nothing wider than 375 px (the page is ${overflow} px wide)`)
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-375.png'), fullPage: true })

      // English by choice, kept in the URL.
      await page.getByRole('button', { name: 'English' }).click()
      await page.waitForURL(/lang=en/)
      assert.equal(await page.locator('h1').textContent(), 'Sales dashboard')
      assert.equal(await page.locator('html').getAttribute('lang'), 'en')

      // A sales user sees their own numbers, and no seller filter.
      await page.getByRole('button', { name: 'Sign out' }).click()
      await signIn(page, SALES)
      const salesToken = await client.login({ username: SALES.username, password: SALES.password })
      const own = await client.stats(salesToken, `${range}&channel=whatsapp`)
      assert.equal(own.total, 1)
      await expectFigures(page, own)
      assert.equal(await page.locator('#assigned_to').isVisible(), false)
      assert.equal(await page.locator('#kpi-overdue').textContent(), '0', "the admin's task is not theirs")
    })
  })
  it('links each figure to a list of the leads behind it, and each of those to its page', {
    timeout: 180_000,
    skip: browserMissing,
  }, async () => {
    const { server, client, adminToken, sales, leads } = await prepared()
    const { page, guarded } = await newPage({ width: 1280, height: 900 })
    await guarded('dashboard-links', async () => {
      const today = new Date().toISOString().slice(0, 10)
      const ids = async (query: string) =>
        (await client.call<{ items: { id: number }[] }>(adminToken, 'GET', `/leads?${query}`)).items.map(
          (lead) => lead.id,
        )
      await page.goto(`${server.url}/dashboard?created_to=${today}`)
      await signIn(page, ADMIN)
      await expectFigures(page, await client.stats(adminToken, `created_to=${today}`))
      const href = (locator: string, text?: string) =>
        page
          .locator(locator, text ? { hasText: text } : {})
          .getByRole('link')
          .getAttribute('href')
      assert.equal(await href('#kpi-total'), `/dashboard/leads?created_to=${today}`)
      assert.equal(
        await href('#kpi-open'),
        `/dashboard/leads?created_to=${today}&status=new&status=contacted&status=quoted`,
      )
      assert.equal(await href('#channels tbody tr', 'Web'), `/dashboard/leads?created_to=${today}&channel=web`)
      assert.equal(
        await href('#sellers tbody tr', 'Sin asignar'),
        `/dashboard/leads?created_to=${today}&assigned_to=none`,
      )

      // The funnel's figure for closed leads opens exactly those leads.
      await page.locator('#funnel tbody tr', { hasText: 'Cerrado' }).getByRole('link').click()
      await page.waitForURL(/\/dashboard\/leads\?created_to=[0-9-]+&status=closed$/)
      const closed = await ids(`status=closed&created_to=${today}`)
      assert.deepEqual(closed, [leads[3], leads[1]])
      assert.deepEqual(await listedLeads(page, 2), closed)
      assert.match((await page.locator('#leads-heading').textContent()) ?? '', /^Cerrado · hasta el /)
      const sellerOfFirst = page
        .locator('#leads tbody tr', { hasText: `#${leads[1]}` })
        .locator('td')
        .nth(3)
      assert.equal(await sellerOfFirst.textContent(), 'Valeria Pérez')
      assert.deepEqual(await accessibilityViolations(page), [], 'no serious or critical accessibility violation')
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-leads-1280.png'), fullPage: true })

      // Back, then the seller's row: their three leads.
      await page.goBack()
      await page.locator('#sellers tbody tr', { hasText: 'Valeria Pérez' }).getByRole('link').click()
      await page.waitForURL(new RegExp(`assigned_to=${sales.id}$`))
      assert.deepEqual(await listedLeads(page, 3), await ids(`assigned_to=${sales.id}`))

      // A lead of the list opens its page.
      await page.getByRole('link', { name: `#${leads[1]}` }).click()
      await page.waitForURL(new RegExp(`/dashboard/leads/${leads[1]}$`))
      await page.locator('#lead-client', { hasText: 'Cliente 1' }).waitFor()
    })
  })

  it('draws a single day as one day label, and says "1 día"', {
    timeout: 180_000,
    skip: browserMissing,
  }, async () => {
    const { server, client, adminToken } = await prepared()
    const { page, guarded } = await newPage({ width: 375, height: 800 })
    await guarded('dashboard-one-day', async () => {
      await page.addInitScript(RECORD_CANVAS_TEXT)
      const today = new Date().toISOString().slice(0, 10)
      const oneDay = `created_from=${today}&created_to=${today}`
      await page.goto(`${server.url}/dashboard?${oneDay}`)
      await signIn(page, ADMIN)
      await expectFigures(page, await client.stats(adminToken, oneDay))
      await page.evaluate(twoFrames)
      // What the chart drew: the y axis's figures, and the x axis's labels.
      const drawn = await page.evaluate<string[]>('window.canvasText()')
      const labels = drawn.filter((text) => text !== '' && !/^\d+$/.test(text))
      const day = await page.evaluate<string>(
        `new Intl.DateTimeFormat('es', { day: 'numeric', month: 'short', timeZone: 'UTC' }).format(new Date('${today}T00:00:00Z'))`,
      )
      assert.deepEqual(labels, [day], `one label, the day (drawn: ${JSON.stringify(drawn)})`)
      assert.match((await page.locator('#per-day-summary').textContent()) ?? '', /^1 día: 7 creados y 2 cerrados\.$/)
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-one-day-375.png'), fullPage: true })
      await page.getByRole('button', { name: 'English' }).click()
      await page.locator('#per-day-summary', { hasText: /^1 day: 7 created and 2 closed\.$/ }).waitFor()
    })
  })

  it('shows a lead at /dashboard/leads/{id}, the page mails link to, after signing in', {
    timeout: 180_000,
    skip: browserMissing,
  }, async () => {
    const { server, client, adminToken, leads } = await prepared()
    const lead = leads[0] as number
    await client.call(adminToken, 'POST', `/leads/${lead}/activities`, {
      type: 'call',
      body: 'Llamó para pedir el precio del plan anual',
    })
    const other = await client.call<{ id: number }>(adminToken, 'POST', '/users', { ...OTHER_SALES, role: 'sales' })
    const owner = await client.call<{ id: number }>(adminToken, 'POST', '/clients', {
      contact_name: 'Cliente ajeno',
      phone: '+584143999999',
    })
    const theirs = await client.call<{ id: number }>(adminToken, 'POST', '/leads', {
      client_id: owner.id,
      channel: 'web',
      assigned_to: other.id,
    })
    // Numeric ids only: anything else is not a lead's page.
    assert.equal((await fetch(`${server.url}/dashboard/leads/abc`)).status, 400)

    const { page, guarded, problems } = await newPage({ width: 1280, height: 900 })
    await guarded(
      'dashboard-lead',
      async () => {
        const response = await page.goto(`${server.url}/dashboard/leads/${lead}`)
        assert.equal(response?.status(), 200)
        assert.match(response?.headers()['content-type'] ?? '', /^text\/html/)
        await signIn(page, SALES, '#lead')
        assert.equal(await page.locator('h1').textContent(), `Lead #${lead} · Cliente 0`)
        assert.equal(await page.locator('#lead-client').textContent(), 'Cliente 0')
        assert.equal(await page.locator('#lead-status').textContent(), 'Nuevo')
        assert.equal(await page.locator('#lead-seller').textContent(), 'Valeria Pérez')
        assert.equal(await page.locator('#sales-notes-row').isVisible(), false, 'no empty notes')
        const call = page.locator('#timeline li', { hasText: 'Llamó para pedir el precio del plan anual' })
        assert.match((await call.textContent()) ?? '', /^Llamada · /)
        assert.deepEqual(await accessibilityViolations(page), [], 'no serious or critical accessibility violation')
        await page.screenshot({ path: join(ARTIFACTS, 'dashboard-lead-1280.png'), fullPage: true })
        await page.setViewportSize({ width: 375, height: 800 })
        await page.evaluate(twoFrames)
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth')
        assert.ok(overflow <= 375, `nothing wider than 375 px (the page is ${overflow} px wide)`)
        await page.screenshot({ path: join(ARTIFACTS, 'dashboard-lead-375.png'), fullPage: true })

        // In English, as English mails link to it.
        await page.goto(`${server.url}/dashboard/leads/${lead}?lang=en`)
        await page.locator('#lead-status', { hasText: 'New' }).waitFor()
        assert.match((await page.locator('#timeline li').first().textContent()) ?? '', /^Call · /)

        // Another seller's lead does not exist for this one.
        await page.goto(`${server.url}/dashboard/leads/${theirs.id}`)
        await page.locator('#missing').waitFor()
        assert.equal(await page.locator('#missing h2').textContent(), 'Lead no encontrado')
        assert.equal(
          await page.locator('#missing p').textContent(),
          `El lead #${theirs.id} no existe, está en la papelera o no lo tienes asignado.`,
        )
        assert.equal(await page.locator('#lead').isVisible(), false)
        assert.equal(await page.locator('#status').textContent(), 'Lead no encontrado')
        // Chromium logs the answers of GET /leads/{id} and its activities: 404, as meant.
        assert.equal(problems().length, 2)

        // A list longer than a page: 50 rows, then the rest on demand, the focus on the first new one.
        for (let index = 0; index < 50; index += 1) {
          await client.call(adminToken, 'POST', '/leads', {
            client_id: owner.id,
            channel: 'manual',
            assigned_to: other.id,
          })
        }
        await page.goto(`${server.url}/dashboard/leads?assigned_to=${other.id}`)
        await page.getByRole('button', { name: 'Cerrar sesión' }).click()
        await signIn(page, ADMIN, '#content')
        assert.equal((await listedLeads(page, 51)).length, 50)
        assert.equal(await page.locator('#leads-count').textContent(), '51 leads. Se muestran 50 de 51.')
        await page.getByRole('button', { name: 'Cargar más' }).click()
        await page.locator('#leads-count', { hasText: /^51 leads\.$/ }).waitFor()
        const all = await page.locator('#leads tbody th').allTextContents()
        assert.equal(new Set(all).size, 51)
        assert.equal(all.at(-1), `#${theirs.id}`, 'the oldest last')
        assert.equal(await page.evaluate('document.activeElement.textContent'), all[50])
        assert.equal(await page.locator('#more').isVisible(), false)
      },
      /^console error: Failed to load resource: the server responded with a status of 404/,
    )
  })
})

/** Signs in through the page's form, then waits for what the page shows once signed in. */
async function signIn(page: Page, user: { username: string; password: string }, shown = '#dashboard') {
  const form = page.locator('#sign-in-form')
  await form.waitFor()
  await form.getByLabel(/Usuario|Username/).fill(user.username)
  await form.getByLabel(/Contraseña|Password/).fill(user.password)
  await form.getByRole('button').click()
  await page.locator(shown).waitFor()
}

/** The lead ids a list page shows, once it shows `count` of them. */
async function listedLeads(page: Page, count: number) {
  await page.locator('#leads-count', { hasText: new RegExp(`^${count} leads?\\.`) }).waitFor()
  const ids = await page.locator('#leads tbody th').allTextContents()
  return ids.map((id) => Number(id.replace('#', '')))
}

const twoFrames = 'new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))'

/** The KPIs and the funnel, once the page shows figures for the current filters. */
async function expectFigures(page: Page, stats: Stats) {
  await page.locator('#kpi-total', { hasText: new RegExp(`^${stats.total}$`) }).waitFor()
  const open = stats.by_status.new + stats.by_status.contacted + stats.by_status.quoted
  assert.equal(await page.locator('#kpi-open').textContent(), String(open))
  assert.equal(await page.locator('#response-waiting').textContent(), String(stats.response_time.waiting))
  const funnel = await page
    .locator('#funnel tbody tr')
    .evaluateAll((rows) =>
      rows.map((row) => [row.querySelector('th')?.textContent, row.querySelector('td')?.textContent]),
    )
  const english = (await page.locator('html').getAttribute('lang')) === 'en'
  assert.deepEqual(
    funnel,
    Object.entries(STATUS_LABELS).map(([status, label]) => [
      english ? status.charAt(0).toUpperCase() + status.slice(1) : label,
      String(stats.by_status[status as keyof typeof STATUS_LABELS]),
    ]),
  )
}

/** axe-core run inside the page (evaluated, not added as a script tag, which the CSP would refuse). */
async function accessibilityViolations(page: Page) {
  await page.evaluate(await readFile(join(root, 'node_modules/axe-core/axe.min.js'), 'utf8'))
  const violations = await page.evaluate<{ id: string; impact: string; nodes: { target: string[] }[] }[]>(
    'axe.run(document).then((result) => result.violations)',
  )
  return violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`)
}
