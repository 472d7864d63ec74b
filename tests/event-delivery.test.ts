import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { startWorkers } from '../src/jobs/worker.js'
import { ADMIN, mode, serverEnvironment, startTestContext } from './helpers/context.js'
import { checkedFetch, checkedInject } from './helpers/contract.js'
import { type Receiver, startReceiver, waitFor } from './helpers/peers.js'
import { startServer } from './helpers/server.js'

const WORKER_ENV = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  // A short timeout makes a short lease: deliveries claimed by the killed server are claimed again within seconds.
  WEBHOOK_TIMEOUT_MS: '1000',
  WORKER_POLL_MS: '50',
  JOB_RETRY_DELAYS_SECONDS: '0.05,0.1,0.2,0.4,0.8,1.6',
}

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

async function adminToken(api: Api): Promise<string> {
  const login = await api.request('POST', '/auth/login', ADMIN)
  assert.equal(login.status, 200)
  return login.body.access_token
}

async function registerWebhook(api: Api, token: string, url: string): Promise<string> {
  const created = await api.request('POST', '/webhooks', { url, events: ['client.created'] }, token)
  assert.equal(created.status, 201, JSON.stringify(created.body))
  return created.body.secret
}

/** The ids of the clients whose client.created the receiver accepted, each checked against the secret. */
function deliveredClientIds(receiver: Receiver, secret: string): number[] {
  const verifier = new Webhook(secret)
  const accepted = receiver.received.filter((request) => request.status === 200)
  return accepted.map((request) => {
    const event = verifier.verify(request.body, request.headers as Record<string, string>) as {
      data: { id: number }
    }
    return event.data.id
  })
}

/**
 * Runs `count` calls, four at a time: the embedded database has one connection, and a burst much wider
 * than that would have requests waiting past DB_CONNECT_TIMEOUT_MS (a 503) on a busy machine.
 */
async function fourAtATime<T>(count: number, call: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) {
        const index = next++
        results[index] = await call(index)
      }
    }),
  )
  return results
}

const phone = (index: number) => `+58414${2_000_000 + index}`

describe('events under process failure and with two instances', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  /** The restarted server of the first test, reused as one of the two instances of the second. */
  let survivor: { url: string; env: Record<string, string>; token: string } | undefined
  after(async () => {
    const failures: unknown[] = []
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => failures.push(error))
    if (failures.length > 0) throw failures[0]
  })

  it('delivers every committed event after kill -9 right after a burst of writes', async () => {
    const receiver = await startReceiver()
    cleanups.push(() => receiver.close())
    // The receiver answers nothing before the kill: every delivery is pending or in flight when the server dies.
    const held: Array<(status: number) => void> = []
    receiver.respond = () => new Promise((resolve) => held.push(resolve))
    const environment = await serverEnvironment()
    cleanups.push(() => environment.cleanup())
    const env = { ...environment.env, ...WORKER_ENV }

    const first = await startServer(env)
    cleanups.push(async () => first.child.kill('SIGKILL'))
    const api = httpApi(first.url)
    const token = await adminToken(api)
    const secret = await registerWebhook(api, token, `${receiver.url}/crash`)

    const BURST = 40
    const answers = await fourAtATime(BURST, (index) =>
      api.request('POST', '/clients', { contact_name: `Burst ${index}`, phone: phone(index) }, token),
    )
    first.child.kill('SIGKILL')
    await first.exited
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array(BURST).fill(201),
    )
    const acknowledged = answers.map((answer) => answer.body.id as number)
    // Requests of the dead server that reach the receiver now count as not delivered (500).
    for (const answer of held.splice(0)) answer(500)
    receiver.respond = () => 200
    const second = await startServer(env)
    cleanups.push(async () => assert.equal(await second.stop(), 0, 'a clean stop'))
    await waitFor('every acknowledged client delivered', () => {
      const delivered = new Set(deliveredClientIds(receiver, secret))
      return acknowledged.every((id) => delivered.has(id))
    })
    const delivered = deliveredClientIds(receiver, secret)
    assert.deepEqual([...new Set(delivered)].sort(), [...acknowledged].sort(), 'every event, and none invented')
    const restartedApi = httpApi(second.url)
    const restartedToken = await adminToken(restartedApi)
    const hooks = await restartedApi.request('GET', '/webhooks', undefined, restartedToken)
    for (const hook of hooks.body.items)
      await restartedApi.request('DELETE', `/webhooks/${hook.id}`, undefined, restartedToken)
    survivor = { url: second.url, env, token: restartedToken }
  })

  it('delivers each event once per webhook with two instances on one database', async () => {
    const receiver = await startReceiver()
    cleanups.push(() => receiver.close())
    let apis: [Api, Api]
    if (mode === 'server') {
      // Two processes on one PostgreSQL database: the first test's restarted server and one more.
      assert.ok(survivor, 'the first test left its server running')
      const two = await startServer(survivor.env)
      cleanups.push(async () => assert.equal(await two.stop(), 0, 'a clean stop'))
      apis = [httpApi(survivor.url), httpApi(two.url)]
    } else {
      // PGlite has one owner, and its socket interleaves the statements of two connections: the
      // second instance's workers share the first one's connection, as a second process cannot.
      const ctx = await startTestContext({ ...WORKER_ENV })
      cleanups.push(() => ctx.close())
      const secondWorkers = startWorkers(ctx.db, ctx.config, ctx.app.log)
      cleanups.push(() => secondWorkers.stop())
      const request: Api['request'] = async (method, path, body, token) => {
        const response = await checkedInject(ctx.app, {
          method: method as never,
          url: path,
          headers: token ? { authorization: `Bearer ${token}` } : {},
          ...(body !== undefined && { payload: body as never }),
        })
        return { status: response.statusCode, body: response.body ? response.json() : undefined }
      }
      apis = [{ request }, { request }]
    }
    const token = await adminToken(apis[0])
    const secrets = [
      await registerWebhook(apis[0], token, `${receiver.url}/one`),
      await registerWebhook(apis[1], token, `${receiver.url}/two`),
    ]
    const COUNT = 30
    const answers = await fourAtATime(COUNT, (index) =>
      (apis[index % 2] as Api).request(
        'POST',
        '/clients',
        { contact_name: `Twin ${index}`, phone: phone(100 + index) },
        token,
      ),
    )
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array(COUNT).fill(201),
    )
    await waitFor('every event at both webhooks', () => receiver.received.length >= COUNT * 2)
    // A little longer, so that a duplicate on its way would arrive.
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const [index, path] of ['/one', '/two'].entries()) {
      const requests = receiver.received.filter((request) => request.path === path)
      const ids = requests.map((request) => request.headers['webhook-id'])
      assert.equal(ids.length, COUNT, `${path}: ${ids.length} requests for ${COUNT} events`)
      assert.equal(new Set(ids).size, COUNT, `${path}: each event once`)
      for (const request of requests) {
        new Webhook(secrets[index] as string).verify(request.body, request.headers as Record<string, string>)
      }
    }
  })
})
