import { STATUS_CODES } from 'node:http'
import type { RouteOptions } from 'fastify'

const PROBLEM_REF = 'Problem'
const completed = new WeakSet<object>()

interface RouteSchema {
  operationId?: string
  hide?: boolean
  security?: unknown[]
  body?: unknown
  querystring?: { required?: string[]; properties?: Record<string, { default?: unknown }> }
  params?: unknown
  response?: Record<string, unknown>
}

const problemResponse = (status: number) => ({
  description: STATUS_CODES[status] ?? 'Error',
  content: { 'application/problem+json': { schema: { $ref: PROBLEM_REF } } },
})

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * Completes each route's documented responses, so the OpenAPI document lists every answer a
 * route can give: the errors that every route of its kind can return (400 for bad input, 401
 * without a valid token, 403 for a write with a read-only API key, 413/415 for bodies, 414 for an
 * over-long path parameter, 409 for a change cancelled by a deadlock, 503 without the database), as problem+json, and a description
 * for each status.
 */
export function completeRouteDocumentation(route: RouteOptions): void {
  const schema = route.schema as RouteSchema | undefined
  // GET and its automatic HEAD share one schema object: complete it once.
  if (!schema?.operationId || schema.hide || !schema.response || completed.has(schema)) return
  completed.add(schema)
  if (schema.querystring) schema.querystring = withDefaultsOptional(schema.querystring)
  const statuses = new Set(Object.keys(schema.response).map(Number))
  if (schema.body || schema.querystring || schema.params) statuses.add(400)
  if (schema.security === undefined) statuses.add(401)
  const writes = [route.method].flat().some((method) => WRITE_METHODS.has(method))
  // A read-only API key is refused any write with 403 insufficient_scope.
  if (schema.security === undefined && writes) statuses.add(403)
  if (schema.body) {
    statuses.add(413)
    statuses.add(415)
  }
  // A change that PostgreSQL cancels in a deadlock with a concurrent one is a 409 concurrent_change.
  if (writes) statuses.add(409)
  if (schema.operationId !== 'getHealth') statuses.add(503)
  // A path parameter longer than the router takes (maxParamLength) is a 414 uri_too_long.
  if (/[:*]/.test(route.url)) statuses.add(414)

  const response: Record<string, unknown> = {}
  for (const status of [...statuses].sort()) {
    const { headers, ...given } = (schema.response[status] ?? {}) as {
      $ref?: string
      headers?: unknown
      type?: unknown
      description?: string
    }
    if (status >= 400 && (Object.keys(given).length === 0 || given.$ref === PROBLEM_REF)) {
      response[status] = problemResponse(status)
    } else if ('content' in given) {
      // A response that is not JSON (a file) documents its own media types.
      response[status] = given
    } else if (status === 204 || status === 304 || given.type === 'null') {
      // No body (a 303 has only its Location): no content to document.
      response[status] = { description: given.description ?? STATUS_CODES[status], type: 'null' }
    } else {
      // Response headers (an ETag) ride beside the body's schema, where the document expects them.
      response[status] = {
        description: STATUS_CODES[status],
        content: { 'application/json': { schema: given } },
        ...(headers !== undefined && { headers }),
      }
    }
  }
  schema.response = response
}

/** A query parameter with a default is not required of the caller (validation fills it in). */
function withDefaultsOptional(querystring: RouteSchema['querystring']): RouteSchema['querystring'] {
  if (!querystring?.required || !querystring.properties) return querystring
  const properties = querystring.properties
  return { ...querystring, required: querystring.required.filter((name) => properties[name]?.default === undefined) }
}

export interface RouteSchemaWithHeaders {
  headers?: { type?: string; properties?: Record<string, unknown> }
  response?: Record<string, unknown>
}

/** Adds request headers to a route's schema: validated like any input, and listed as parameters in the document. */
export function addHeaderParameters(schema: RouteSchemaWithHeaders, properties: Record<string, unknown>): void {
  schema.headers = { ...schema.headers, type: 'object', properties: { ...schema.headers?.properties, ...properties } }
}
