import { type Runtime, startRuntime } from '../../src/runtime.js'
import { mode, serverEnvironment, startTestContext } from './context.js'
import { checkedFetch, checkedInject } from './contract.js'
import { type ServerProcess, startServer } from './server.js'

export interface Answer {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
  body: any
  headers: Record<string, string | string[] | number | undefined>
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** One API instance, however it runs: a process of its own, or an app in this process. */
export interface Instance {
  request(
    method: Method,
    url: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<Answer>
}

export function processInstance(server: ServerProcess): Instance {
  return {
    async request(method, url, body, token, headers = {}) {
      const response = await checkedFetch(`${server.url}${url}`, {
        method,
        headers: {
          ...headers,
          ...(token && { authorization: `Bearer ${token}` }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      })
      const text = await response.text()
      return {
        status: response.status,
        body: text ? JSON.parse(text) : undefined,
        headers: Object.fromEntries(response.headers),
      }
    },
  }
}

export function appInstance(app: Runtime['app']): Instance {
  return {
    async request(method, url, body, token, headers = {}) {
      const response = await checkedInject(app, {
        method,
        url,
        headers: { ...headers, ...(token && { authorization: `Bearer ${token}` }) },
        ...(body !== undefined && { payload: body as never }),
      })
      return {
        status: response.statusCode,
        body: response.body ? response.json() : undefined,
        headers: response.headers,
      }
    },
  }
}

/**
 * Two API instances on one database: two server processes over real HTTP on a PostgreSQL server;
 * on the embedded database, which has one owner, two apps in this process on its one socket.
 */
export async function startTwoInstances(
  overrides: Record<string, string> = {},
): Promise<{ instances: [Instance, Instance]; close(): Promise<void> }> {
  const cleanups: Array<() => Promise<unknown>> = []
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  }
  try {
    if (mode === 'server') {
      // One DATA_DIR too, for the shared JWT secret.
      const environment = await serverEnvironment()
      cleanups.push(() => environment.cleanup())
      const first = await startServer({ ...environment.env, ...overrides })
      cleanups.push(() => first.stop())
      const second = await startServer({ ...environment.env, ...overrides })
      cleanups.push(() => second.stop())
      return { instances: [processInstance(first), processInstance(second)], close }
    }
    const ctx = await startTestContext(overrides)
    cleanups.push(() => ctx.close())
    // Without workers of its own: the socket interleaves two connections' statements, and a second
    // set of workers polling beside the first would only add that hazard to what is tested.
    const other = await startRuntime({ ...ctx.config, workers: false }, { embedded: ctx.embedded })
    cleanups.push(() => other.close())
    return { instances: [appInstance(ctx.app), appInstance(other.app)], close }
  } catch (error) {
    await close()
    throw error
  }
}
