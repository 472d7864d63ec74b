import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { openDatabase } from '../src/db/database.js'
import { metricsScraper } from '../src/metrics/database.js'
import { countAttempt, jobAttempts, jobFailures, observeRequest, processRegistry } from '../src/metrics/registry.js'
import { bearerMatches } from '../src/metrics/routes.js'

const counted = async (counter: typeof jobAttempts, kind: string) =>
  (await counter.get()).values.find((sample) => sample.labels.kind === kind)?.value ?? 0

describe('metrics registry', () => {
  it('counts an attempt, and a failure when the job throws, passing the error on', async () => {
    const attempts = await counted(jobAttempts, 'mail')
    const failures = await counted(jobFailures, 'mail')
    assert.equal(await countAttempt('mail', async () => 'sent'), 'sent')
    await assert.rejects(
      countAttempt('mail', async () => {
        throw new Error('550 refused')
      }),
      /550 refused/,
    )
    assert.equal((await counted(jobAttempts, 'mail')) - attempts, 2)
    assert.equal((await counted(jobFailures, 'mail')) - failures, 1)
  })

  it('labels a request no route matched as unmatched', async () => {
    observeRequest('GET', undefined, 404, 0.001)
    const text = await processRegistry.getSingleMetricAsString('crm_http_requests_total')
    assert.match(text, /crm_http_requests_total\{method="GET",route="unmatched",status="404"\} \d+/)
  })
})

describe('the metrics token', () => {
  const token = 'metrics-token-0123456789abcdef'
  it('matches only `Bearer <token>`, the scheme in any case', () => {
    assert.equal(bearerMatches(`Bearer ${token}`, token), true)
    assert.equal(bearerMatches(`bearer ${token}`, token), true)
    assert.equal(bearerMatches(undefined, token), false)
    assert.equal(bearerMatches('', token), false)
    assert.equal(bearerMatches(token, token), false)
    assert.equal(bearerMatches(`Basic ${token}`, token), false)
    assert.equal(bearerMatches(`Bearer ${token.slice(0, -1)}`, token), false)
    assert.equal(bearerMatches(`Bearer ${token} `, token), false)
  })
})

describe('the metrics scraper', () => {
  it('serves the other series, without the backlog, while the database does not answer; no pool, no pool series', async () => {
    const unreachable = openDatabase({
      url: 'postgres://postgres@127.0.0.1:1/none',
      poolSize: 1,
      connectTimeoutMs: 500,
      statementTimeoutMs: 1000,
    })
    try {
      const withPool = metricsScraper(unreachable.db, unreachable.pool)
      const text = await withPool.scrape()
      assert.match(text, /^crm_db_pool_connections\{state="total"\} \d+$/m)
      assert.match(text, /^crm_job_attempts_total\{kind="mail"\} \d+$/m)
      assert.doesNotMatch(text, /^crm_event_backlog\{/m)
      assert.doesNotMatch(text, /^crm_event_backlog_oldest_age_seconds /m)
      const withoutPool = await metricsScraper(unreachable.db, undefined).scrape()
      assert.doesNotMatch(withoutPool, /^crm_db_pool_connections/m)
    } finally {
      await unreachable.close()
    }
  })
})
