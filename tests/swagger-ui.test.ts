import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { ARTIFACTS, browserMissing, launchChromium } from './helpers/browser.js'
import { ADMIN, type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { freePort, type ServerProcess, startServer } from './helpers/server.js'

const SCREENSHOT = join(ARTIFACTS, 'swagger-ui-auth-me.png')

describe('Swagger UI at /docs', () => {
  let environment: ServerEnvironment | undefined
  let server: ServerProcess | undefined
  let browser: Browser | undefined

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.stop()
    await environment?.cleanup()
  })

  it('lets a person authorize with the password flow and call GET /auth/me', {
    timeout: 180_000,
    skip: browserMissing,
  }, async (t) => {
    const started = performance.now()
    const lap = (what: string) => t.diagnostic(`${what} after ${Math.round(performance.now() - started)} ms`)
    environment = await serverEnvironment()
    const port = await freePort()
    // PUBLIC_URL names another host than the one the page is opened on: "Try it out" must still reach the API.
    server = await startServer({ ...environment.env, PORT: String(port), PUBLIC_URL: `http://localhost:${port}` })
    assert.equal(server.url, `http://127.0.0.1:${port}`)
    lap('server listening')

    browser = await launchChromium()
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    page.setDefaultTimeout(15_000)
    lap('browser launched')

    // What the browser saw, to explain a failure.
    const log: string[] = []
    page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`))
    page.on('pageerror', (error) => log.push(`page error: ${error.message}`))
    page.on('requestfailed', (request) =>
      log.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`),
    )
    page.on('response', (response) => {
      if (response.status() >= 400)
        log.push(`response: ${response.status()} ${response.request().method()} ${response.url()}`)
    })
    const explain = (what: string) => `${what}\nbrowser log:\n${log.join('\n') || '(empty)'}`

    await mkdir(ARTIFACTS, { recursive: true })
    try {
      await scenario(page, server.url, explain)
      await page.screenshot({ path: SCREENSHOT })
      lap('scenario done')
    } catch (error) {
      await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {})
      if (error instanceof Error && !error.message.includes('browser log:')) error.message = explain(error.message)
      throw error
    }
  })
})

async function scenario(page: Page, url: string, explain: (what: string) => string) {
  const docs = await page.goto(`${url}/docs`)
  assert.equal(docs?.status(), 200, explain('GET /docs'))

  // Rendered: the title and the operations of the document.
  await page.locator('.swagger-ui .info .title').filter({ hasText: 'Mini CRM API' }).waitFor()
  const operation = page.locator('#operations-auth-getCurrentUser')
  await operation.waitFor()
  const csp = docs?.headers()['content-security-policy'] ?? ''
  assert.match(csp, /connect-src 'self'/, csp)

  // Authorize with the OAuth2 password flow.
  await page.locator('.auth-wrapper .btn.authorize').click()
  const dialog = page.locator('.dialog-ux .modal-ux')
  await dialog.waitFor()
  const scheme = dialog.locator('.auth-container').filter({ hasText: 'passwordLogin' })
  await scheme.locator('#oauth_username').fill(ADMIN.username)
  await scheme.locator('#oauth_password').fill(ADMIN.password)
  const [token] = await Promise.all([
    page.waitForResponse((response) => response.url() === `${url}/auth/login`),
    scheme
      .locator('button.authorize')
      .filter({ hasText: /^Authorize$/ })
      .click(),
  ])
  assert.equal(token.status(), 200, explain(`POST /auth/login: ${token.status()} ${await token.text()}`))
  await scheme
    .locator('button')
    .filter({ hasText: /^Logout$/ })
    .waitFor()
    .catch(async (error: Error) => {
      const shown = await scheme.textContent().catch(() => '')
      throw new Error(explain(`no Logout button for passwordLogin (${error.message}); the dialog shows:\n${shown}`))
    })
  assert.match((await scheme.textContent()) ?? '', /Authorized/)
  await scheme.locator('button.btn-done').click()
  await dialog.waitFor({ state: 'detached' })

  // Call GET /auth/me.
  await operation.locator('.opblock-summary').first().click()
  await operation.locator('.try-out__btn').click()
  const [me] = await Promise.all([
    page.waitForResponse((response) => response.url() === `${url}/auth/me`),
    operation.locator('.btn.execute').click(),
  ])
  assert.equal(me.status(), 200, explain(`GET /auth/me: ${me.status()} ${await me.text()}`))
  assert.equal(me.request().headers().authorization?.startsWith('Bearer '), true, 'sent with the bearer token')
  // Relative, so that the call goes to the host the page came from.
  assert.equal(await page.locator('.servers select option').first().getAttribute('value'), '/', 'the server URL')

  const live = operation.locator('.live-responses-table .response').first()
  await live.waitFor()
  assert.equal((await live.locator('.response-col_status').textContent())?.trim(), '200')
  const body = live.locator('.response-col_description .highlight-code').first()
  assert.match((await body.textContent()) ?? '', /"username": "admin"/)
  await live.scrollIntoViewIfNeeded()
}
