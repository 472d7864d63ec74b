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
const SALES = { username: 'vendedora', password: 'vendedora-123' }

interface Stats {
  total: number
  by_status: Record<keyof typeof STATUS_LABELS, number>
  by_channel: Record<string, number>
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

describe('the dashboard at /dashboard', () => {
  let environment: ServerEnvironment | undefined
  let server: ServerProcess | undefined
  let browser: Browser | undefined

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.stop()
    await environment?.cleanup()
  })

  it('shows /leads/stats as people read it, with filters in the URL, for admin and sales alike', {
    timeout: 180_000,
    skip: browserMissing,
  }, async () => {
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
    for (const [index, [channel, status, assignee]] of plan.entries()) {
      const owner = await client.call<{ id: number }>(adminToken, 'POST', '/clients', {
        contact_name: `Cliente ${index}`,
        phone: `+58414${String(3_000_000 + index)}`,
      })
      await client.call(adminToken, 'POST', '/leads', { client_id: owner.id, channel, status, assigned_to: assignee })
    }

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

    browser = await launchChromium()
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
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
    await mkdir(ARTIFACTS, { recursive: true })

    try {
      const today = new Date().toISOString().slice(0, 10)
      const weekAgo = new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10)
      const range = `created_from=${weekAgo}&created_to=${today}`
      const response = await page.goto(`${server.url}/dashboard?${range}`)
      assert.equal(response?.status(), 200)

      await signIn(page, ADMIN)
      await expectFigures(page, await client.stats(adminToken, range))
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
      await page.evaluate('new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))')
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
      const salesToken = await client.login(SALES)
      const own = await client.stats(salesToken, `${range}&channel=whatsapp`)
      assert.equal(own.total, 1)
      await expectFigures(page, own)
      assert.equal(await page.locator('#assigned_to').isVisible(), false)

      assert.deepEqual(problems, [], 'no console error and no CSP violation')
    } catch (error) {
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-failure.png'), fullPage: true }).catch(() => {})
      if (error instanceof Error) error.message += `\nbrowser log:\n${[...problems, ...log].join('\n') || '(empty)'}`
      throw error
    }
  })
})

async function signIn(page: Page, user: { username: string; password: string }) {
  const form = page.locator('#sign-in-form')
  await form.waitFor()
  await form.getByLabel(/Usuario|Username/).fill(user.username)
  await form.getByLabel(/Contraseña|Password/).fill(user.password)
  await form.getByRole('button').click()
  await page.locator('#dashboard').waitFor()
}

/** The KPIs and the funnel, once the page shows figures for the current filters. */
async function expectFigures(page: Page, stats: Stats) {
  await page.locator('#kpi-total', { hasText: new RegExp(`^${stats.total}$`) }).waitFor()
  const open = stats.by_status.new + stats.by_status.contacted + stats.by_status.quoted
  assert.equal(await page.locator('#kpi-open').textContent(), String(open))
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
