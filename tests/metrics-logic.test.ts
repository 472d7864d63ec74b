import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
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
