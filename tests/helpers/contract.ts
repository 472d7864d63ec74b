import type { ErrorObject, ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'

/**
 * Every response a test receives is checked against the OpenAPI document the app serves: its
 * status must be documented for the operation, its content type among the documented ones, and
 * a JSON body must match the documented schema. A mismatch throws, failing the test.
 */

interface MediaType {
  schema?: { type?: unknown; format?: unknown }
}
interface ResponseObject {
  content?: Record<string, MediaType>
}
interface Operation {
  responses?: Record<string, ResponseObject>
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>
}

export interface Received {
  method: string
  /** The path, with or without a query string, or a whole URL. */
  url: string
  status: number
  contentType: string | string[] | number | undefined
}

/** What remains to check once status and content type are known: the body, when it must be read. */
export type BodyCheck = ((body: string) => void) | undefined

const DOCUMENT_ID = 'openapi.json'

interface Route {
  path: string
  segments: string[]
}

export class ResponseContractError extends Error {
  override name = 'ResponseContractError'
}

export class ResponseContract {
  readonly #document: OpenApiDocument
  readonly #ajv: Ajv2020
  readonly #routes: Route[]
  readonly #validators = new Map<string, ValidateFunction>()

  constructor(document: OpenApiDocument) {
    this.#document = document
    this.#ajv = new Ajv2020({ strict: false, allErrors: true })
    addFormats.default(this.#ajv)
    this.#ajv.addSchema(document as object, DOCUMENT_ID)
    this.#routes = Object.keys(document.paths).map((path) => ({ path, segments: path.split('/') }))
  }

  /**
   * Checks a response's status and content type, and answers how to check its body (undefined
   * when nothing more is to be checked). Throws a ResponseContractError on a mismatch.
   */
  expect(received: Received): BodyCheck {
    const method = received.method.toLowerCase()
    const path = new URL(received.url, 'http://localhost').pathname
    const route = this.#route(path)
    const operations = route ? this.#document.paths[route.path] : undefined
    // HEAD answers as GET does, without a body.
    const documentedMethod = operations?.[method] ? method : method === 'head' ? 'get' : method
    const operation = operations?.[documentedMethod]
    // Routes the document leaves out on purpose (/docs, /dashboard and their assets, /openapi.json
    // itself, the CORS preflight) and URLs that match no route (a 404, a 405) are not checked.
    if (!route || !operation?.responses) return undefined
    const where = `${received.method.toUpperCase()} ${route.path} (${received.url}) answered ${received.status}`
    const responses = operation.responses
    const statusKey = [String(received.status), `${String(received.status)[0]}XX`, 'default'].find(
      (key) => responses[key] !== undefined,
    )
    if (!statusKey) {
      throw new ResponseContractError(
        `${where}, a status the OpenAPI document does not list (it lists ${Object.keys(responses).join(', ')})`,
      )
    }
    const content = responses[statusKey]?.content
    const contentType = [received.contentType].flat()[0]
    const mediaType = contentType === undefined ? undefined : String(contentType).split(';')[0]?.trim().toLowerCase()
    if (!content || Object.keys(content).length === 0) {
      return (body) => {
        if (body.length > 0) {
          throw new ResponseContractError(
            `${where} with a body (${mediaType ?? 'no content type'}) where the document lists none: ${excerpt(body)}`,
          )
        }
      }
    }
    const documented = mediaType && Object.keys(content).find((key) => mediaTypeMatches(key, mediaType))
    if (!documented) {
      throw new ResponseContractError(
        `${where} as ${mediaType ?? 'no content type'}, where the document lists ${Object.keys(content).join(', ')}`,
      )
    }
    if (method === 'head' || !isJson(documented)) return undefined
    const validate = this.#validator(route.path, documentedMethod, statusKey, documented)
    return (body) => {
      let value: unknown
      try {
        value = JSON.parse(body)
      } catch {
        throw new ResponseContractError(`${where} with a body that is not JSON: ${excerpt(body)}`)
      }
      if (validate && !validate(value)) {
        throw new ResponseContractError(
          `${where} with a body the document's schema refuses:\n${describe(validate.errors ?? [])}\nbody: ${excerpt(body)}`,
        )
      }
    }
  }

  /** Checks a whole response at once. */
  check(received: Received & { body: string }): void {
    this.expect(received)?.(received.body)
  }

  /** The documented path a URL falls on; a literal segment wins over a parameter, as in the router. */
  #route(path: string): Route | undefined {
    const segments = path.split('/')
    const matching = this.#routes.filter(
      (route) =>
        route.segments.length === segments.length &&
        route.segments.every((segment, index) => isParameter(segment) || segment === segments[index]),
    )
    matching.sort((a, b) => {
      for (let index = 0; index < a.segments.length; index++) {
        const literalA = !isParameter(a.segments[index] as string)
        const literalB = !isParameter(b.segments[index] as string)
        if (literalA !== literalB) return literalA ? -1 : 1
      }
      return 0
    })
    return matching[0]
  }

  #validator(path: string, method: string, status: string, mediaType: string): ValidateFunction | undefined {
    const pointer = ['paths', path, method, 'responses', status, 'content', mediaType, 'schema']
      .map((segment) => encodeURIComponent(segment.replaceAll('~', '~0').replaceAll('/', '~1')))
      .join('/')
    if (!this.#validators.has(pointer)) {
      const schema = this.#document.paths[path]?.[method]?.responses?.[status]?.content?.[mediaType]?.schema
      if (schema === undefined) return undefined
      const validate = this.#ajv.getSchema(`${DOCUMENT_ID}#/${pointer}`)
      if (!validate) throw new Error(`no schema at ${pointer}`)
      this.#validators.set(pointer, validate)
    }
    return this.#validators.get(pointer)
  }
}

function isParameter(segment: string): boolean {
  return segment.startsWith('{') && segment.endsWith('}')
}

function mediaTypeMatches(documented: string, received: string): boolean {
  if (documented === '*/*' || documented === received) return true
  return documented.endsWith('/*') && received.startsWith(documented.slice(0, -1))
}

function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json')
}

function describe(errors: ErrorObject[]): string {
  return errors
    .map((error) => `  body${error.instancePath} ${error.message ?? ''} ${JSON.stringify(error.params)}`)
    .join('\n')
}

function excerpt(body: string): string {
  return body.length > 600 ? `${body.slice(0, 600)}…` : body
}

const contracts = new WeakMap<FastifyInstance, ResponseContract>()

/** The contract of an app, from the document it serves (built once per app). */
export function contractOf(app: FastifyInstance): ResponseContract {
  let contract = contracts.get(app)
  if (!contract) {
    contract = new ResponseContract(app.swagger() as unknown as OpenApiDocument)
    contracts.set(app, contract)
  }
  return contract
}

/** app.inject, with the response checked against the app's OpenAPI document. */
export async function checkedInject(
  app: FastifyInstance,
  options: InjectOptions | string,
): Promise<LightMyRequestResponse> {
  const response = await app.inject(options)
  const request = typeof options === 'string' ? { method: 'GET', url: options } : options
  const url = typeof request.url === 'string' ? request.url : String(request.url?.pathname ?? request.path ?? '/')
  contractOf(app).check({
    method: String(request.method ?? 'GET'),
    url,
    status: response.statusCode,
    contentType: response.headers['content-type'],
    body: response.body,
  })
  return response
}

/** Puts another contract in place of an app's own (to show that a lie fails the test). */
export function useContract(app: FastifyInstance, contract: ResponseContract): void {
  contracts.set(app, contract)
}

const served = new Map<string, Promise<ResponseContract>>()

/** The contract of a running server, from its /openapi.json (fetched once per origin). */
function contractAt(origin: string): Promise<ResponseContract> {
  let contract = served.get(origin)
  if (!contract) {
    contract = fetch(`${origin}/openapi.json`).then(async (response) => {
      if (!response.ok) throw new Error(`${origin}/openapi.json answered ${response.status}`)
      return new ResponseContract((await response.json()) as OpenApiDocument)
    })
    // A failed fetch is not kept: the next response asks again.
    contract.catch(() => served.delete(origin))
    served.set(origin, contract)
  }
  return contract
}

/**
 * fetch, with the response checked against the OpenAPI document the server serves. A JSON body
 * (or one that should be empty) is read from a clone, so the caller can still read the response;
 * a file (CSV, XLSX) is left unread, for the caller to stream.
 */
export async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await fetch(input, init)
  const url = new URL(input instanceof Request ? input.url : String(input))
  const contract = await contractAt(url.origin)
  const checkBody = contract.expect({
    method: init?.method ?? (input instanceof Request ? input.method : 'GET'),
    url: `${url.pathname}${url.search}`,
    status: response.status,
    contentType: response.headers.get('content-type') ?? undefined,
  })
  checkBody?.(await response.clone().text())
  return response
}
