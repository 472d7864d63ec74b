import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import parsePrometheusTextFormat, { type MetricFamily, type Sample } from 'parse-prometheus-text-format'
import { ConfigError } from '../src/config.js'
import { type Runtime, startRuntime } from '../src/runtime.js'
import { createTestDatabase, startTestContext, type TestContext, testConfig } from './helpers/context.js'
import { createClient, createLead } from './helpers/fixtures.js'
import { type Receiver, startReceiver, waitFor } from './helpers/peers.js'

const TOKEN = 'metrics-token-0123456789abcdef'
// Enough retries, 0.3 s apart, for the receiver to come back before a delivery fails for good.
const SLOW_RETRIES = Array.from({ length: 12 }, () => '0.3').join(',')

type Labels = Record<string, string>

/**
 * The parsed text: its families as the parser reads them (names, types), and each sample by name and
 * labels. The parser folds a labelled histogram's series into one, so samples are read from a second
 * parse with histograms declared untyped: each `_bucket`, `_sum` and `_count` line then keeps its
 * labels (in as many families of that name as there are label sets).
 */
function parsed(text: string) {
  const families = parsePrometheusTextFormat(text)
  const flat = parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'))
  const family = (name: string): MetricFamily => {
    const found = families.find((candidate) => candidate.name === name)
    assert.ok(found, `no series ${name} in:\n${text}`)
    return found
  }
  const sample = (name: string, labels: Labels = {}): Sample | undefined =>
    flat
      .filter((candidate) => candidate.name === name)
      .flatMap((candidate) => candidate.metrics)
      .find((candidate) => Object.entries(labels).every(([key, value]) => candidate.labels?.[key] === value))
  /** A sample's value; 0 for a series not there yet. */
  const value = (name: string, labels: Labels = {}): number => Number(sample(name, labels)?.value ?? 0)
  return { families, flat, family, sample, value }
}

describe('GET /metrics with METRICS_TOKEN', () => {
  let ctx: TestContext
  let receiver: Receiver

  before(async () => {
    ctx = await startTestContext({
      METRICS_TOKEN: TOKEN,
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOK_TIMEOUT_MS: '1000',
      WORKER_POLL_MS: '50',
      JOB_RETRY_DELAYS_SECONDS: SLOW_RETRIES,
      LOGIN_MAX_FAILURES_PER_USER: '2',
    })
    receiver = await startReceiver()
  })
  after(async () => {
    await ctx.close()
    await receiver.close()
  })

  const scrapeWith = (authorization?: string) =>
    ctx.injectUnchecked('GET /metrics is left out of the OpenAPI document', {
      method: 'GET',
      url: '/metrics',
      headers: authorization === undefined ? {} : { authorization },
    })
  const scrape = async () => {
    const response = await scrapeWith(`Bearer ${TOKEN}`)
    assert.equal(response.statusCode, 200, response.body)
    return parsed(response.body)
  }

  it("answers Prometheus' text format, which a Prometheus text parser reads, with every documented series", async () => {
    const response = await scrapeWith(`Bearer ${TOKEN}`)
    assert.equal(response.statusCode, 200)
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
    const metrics = parsed(response.body)
    const types = Object.fromEntries(metrics.families.map((family) => [family.name, family.type]))
    assert.deepEqual(
      {
        requests: types.crm_http_requests_total,
        duration: types.crm_http_request_duration_seconds,
        pool: types.crm_db_pool_connections,
        backlog: types.crm_event_backlog,
        oldest: types.crm_event_backlog_oldest_age_seconds,
        attempts: types.crm_job_attempts_total,
        failures: types.crm_job_failures_total,
        latency: types.crm_webhook_delivery_duration_seconds,
        logins: types.crm_login_failures_total,
      },
      {
        requests: 'COUNTER',
        duration: 'HISTOGRAM',
        pool: 'GAUGE',
        backlog: 'GAUGE',
        oldest: 'GAUGE',
        attempts: 'COUNTER',
        failures: 'COUNTER',
        latency: 'HISTOGRAM',
        logins: 'COUNTER',
      },
    )
    // Nothing counts rate-limit refusals: no such series is offered.
    assert.equal(types.crm_rate_limited_total, undefined)
    for (const state of ['total', 'idle', 'waiting']) {
      assert.ok(metrics.sample('crm_db_pool_connections', { state }), `pool ${state}`)
    }
    assert.ok(metrics.value('crm_db_pool_connections', { state: 'total' }) >= 1)
    for (const kind of ['webhook_delivery', 'mail', 'reminder']) {
      assert.ok(metrics.sample('crm_job_attempts_total', { kind }), `attempts of ${kind}`)
      assert.ok(metrics.sample('crm_job_failures_total', { kind }), `failures of ${kind}`)
    }
    // The workers run: each round runs the task reminders.
    await waitFor(
      'a run of the reminders',
      async () => (await scrape()).value('crm_job_attempts_total', { kind: 'reminder' }) > 0,
    )
  })

  it('counts GET /leads/{id} under its route pattern and status, never its URL', async () => {
    const client = await createClient(ctx)
    const lead = await createLead(ctx, { client_id: client.id })
    const before = await scrape()
    const found = await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}`)
    assert.equal(found.statusCode, 200)
    const missing = await ctx.as(ctx.adminToken, 'GET', '/leads/99999999')
    assert.equal(missing.statusCode, 404)
    const unknown = await ctx.injectUnchecked('a path no route has', { method: 'GET', url: '/no-such-path/12345' })
    assert.equal(unknown.statusCode, 404)
    const response = await scrapeWith(`Bearer ${TOKEN}`)
    const after = parsed(response.body)
    const delta = (labels: Labels) =>
      after.value('crm_http_requests_total', labels) - before.value('crm_http_requests_total', labels)
    assert.equal(delta({ method: 'GET', route: '/leads/:id', status: '200' }), 1)
    assert.equal(delta({ method: 'GET', route: '/leads/:id', status: '404' }), 1)
    assert.equal(delta({ method: 'GET', route: 'unmatched', status: '404' }), 1)
    const labels = { method: 'GET', route: '/leads/:id', status: '200' }
    assert.ok(after.value('crm_http_request_duration_seconds_count', labels) >= 1)
    assert.ok(after.value('crm_http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }) >= 1)
    // No id, token or raw URL in any label value.
    const labelValues = after.flat.flatMap((family) =>
      family.metrics.flatMap((sample) => Object.values(sample.labels ?? {})),
    )
    const routes = after.family('crm_http_requests_total').metrics.map((series) => series.labels?.route ?? '')
    for (const route of routes) assert.doesNotMatch(route, /\/\d/, `a route label carries an id: ${route}`)
    for (const value of labelValues) {
      assert.ok(!value.includes('99999999') && !value.includes('12345') && !value.includes(TOKEN), value)
    }
    assert.ok(!response.body.includes(TOKEN))
    assert.ok(!response.body.includes(ctx.adminToken))
  })

  it('refuses a request without the token, with a wrong one, or with another scheme (401)', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-token',
      `Bearer ${TOKEN}x`,
      `Basic ${TOKEN}`,
      `Bearer ${ctx.adminToken}`,
    ]) {
      const response = await scrapeWith(authorization)
      assert.equal(response.statusCode, 401, String(authorization))
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
      assert.equal(response.json().code, 'unauthorized')
      assert.match(String(response.headers['www-authenticate']), /^Bearer realm=/)
      assert.ok(!response.body.includes('crm_'))
    }
  })

  it('counts refused logins by reason: invalid credentials, then throttled', async () => {
    const before = await scrape()
    const login = (password: string) =>
      ctx.inject({ method: 'POST', url: '/auth/login', payload: { username: 'metrics-nobody', password } })
    assert.equal((await login('wrong-1')).statusCode, 401)
    assert.equal((await login('wrong-2')).statusCode, 401)
    assert.equal((await login('wrong-3')).statusCode, 429)
    const after = await scrape()
    const delta = (reason: string) =>
      after.value('crm_login_failures_total', { reason }) - before.value('crm_login_failures_total', { reason })
    assert.equal(delta('invalid_credentials'), 2)
    assert.equal(delta('throttled'), 1)
  })

  it('shows the event backlog growing while a webhook receiver fails, and draining once it answers again', async () => {
    let failing = true
    receiver.respond = () => (failing ? 500 : 200)
    const hook = await ctx.as(ctx.adminToken, 'POST', '/webhooks', { url: `${receiver.url}/backlog`, events: ['*'] })
    assert.equal(hook.statusCode, 201, hook.body)
    const start = await scrape()
    const client = await createClient(ctx)
    await createLead(ctx, { client_id: client.id })
    const failures = (metrics: ReturnType<typeof parsed>) =>
      metrics.value('crm_job_failures_total', { kind: 'webhook_delivery' })
    // Both events fanned out to a delivery each, and at least one attempt failed.
    const during = await waitFor('failed deliveries counted in the backlog', async () => {
      const now = await scrape()
      const waiting = now.value('crm_event_backlog', { queue: 'webhook_deliveries' })
      return failures(now) > failures(start) && waiting >= 2 && now
    })
    assert.ok(during.value('crm_event_backlog_oldest_age_seconds') > 0)
    assert.ok(
      during.value('crm_webhook_delivery_duration_seconds_count', { outcome: 'failure' }) >
        start.value('crm_webhook_delivery_duration_seconds_count', { outcome: 'failure' }),
    )

    failing = false
    const drained = await waitFor('the backlog drained', async () => {
      const now = await scrape()
      const empty =
        now.value('crm_event_backlog', { queue: 'webhook_deliveries' }) === 0 &&
        now.value('crm_event_backlog', { queue: 'events' }) === 0
      return empty && now
    })
    assert.equal(drained.value('crm_event_backlog_oldest_age_seconds'), 0)
    assert.ok(
      drained.value('crm_webhook_delivery_duration_seconds_count', { outcome: 'success' }) >=
        start.value('crm_webhook_delivery_duration_seconds_count', { outcome: 'success' }) + 2,
    )
    const attempts = (metrics: ReturnType<typeof parsed>) =>
      metrics.value('crm_job_attempts_total', { kind: 'webhook_delivery' })
    assert.ok(attempts(drained) - attempts(start) >= 3)
    assert.ok(receiver.received.filter((request) => request.path === '/backlog' && request.status === 200).length >= 2)
  })
})

describe('GET /metrics on METRICS_PORT', () => {
  let runtime: Runtime
  let drop: () => Promise<void>

  before(async () => {
    const database = await createTestDatabase()
    drop = database.drop
    const config = testConfig({
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
      ...(database.url && { DATABASE_URL: database.url }),
    })
    runtime = await startRuntime(config, { embedded: database.embedded })
  })
  after(async () => {
    await runtime.close()
    await drop()
  })

  const metricsUrl = (path: string) => {
    assert.ok(runtime.metrics)
    return `http://127.0.0.1:${(runtime.metrics.server.address() as AddressInfo).port}${path}`
  }

  it('serves the metrics there without a token, and nothing else', async () => {
    const response = await fetch(metricsUrl('/metrics'))
    assert.equal(response.status, 200)
    const metrics = parsed(await response.text())
    assert.ok(metrics.sample('crm_event_backlog', { queue: 'events' }))
    assert.ok(metrics.sample('crm_db_pool_connections', { state: 'total' }))
    assert.equal((await fetch(metricsUrl('/health'))).status, 404)
    assert.equal((await fetch(metricsUrl('/leads'))).status, 404)
  })

  it('leaves /metrics off the API port when METRICS_TOKEN is unset (404)', async () => {
    const response = await runtime.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    assert.equal(response.statusCode, 404)
    assert.equal(response.json().code, 'not_found')
  })

  it('is not in the OpenAPI document', async () => {
    const document = (await runtime.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    assert.equal(document.paths['/metrics'], undefined)
  })
})

describe('METRICS_PORT configuration', () => {
  it('refuses METRICS_PORT equal to PORT, and a METRICS_TOKEN shorter than 16 characters', () => {
    assert.throws(
      () => testConfig({ PORT: '8123', METRICS_PORT: '8123' }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError)
        assert.match(error.message, /METRICS_PORT must differ from PORT/)
        return true
      },
    )
    assert.throws(() => testConfig({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN/)
    assert.equal(testConfig({ PORT: '0', METRICS_PORT: '0' }).metrics.port, 0)
  })
})
