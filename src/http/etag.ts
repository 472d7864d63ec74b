import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { configure } from 'safe-stable-stringify'
import { PreconditionFailedError } from '../errors/domain.js'
import { addHeaderParameters, type RouteSchemaWithHeaders } from './openapi.js'

/** JSON with keys sorted at every depth and dates as ISO strings: the same content always gives the same text. */
export const canonicalJson = configure({ deterministic: true, bigint: true, circularValue: TypeError })

/**
 * The strong entity tag of a representation: a hash of it as GET returns it, so it changes when any
 * field the GET shows changes (a lead's embedded client name included) and at no other time.
 */
export function etagOf(representation: unknown): string {
  const digest = createHash('sha256')
    .update(canonicalJson(representation) ?? '')
    .digest('base64url')
  return `"${digest.slice(0, 27)}"`
}

/** The entity tags of an If-Match or If-None-Match header, `*` as itself; null when absent. */
function entityTags(header: string | string[] | undefined): string[] | null {
  if (header === undefined) return null
  const text = Array.isArray(header) ? header.join(',') : header
  if (text.trim() === '*') return ['*']
  return text.match(/(?:W\/)?"[^"]*"/g) ?? []
}

/**
 * RFC 9110 §13.1.1, for a resource that exists: true without the header, with `*`, or when one of
 * its tags equals `etag` by strong comparison (a weak tag never matches).
 */
export function ifMatchHolds(ifMatch: string | string[] | undefined, etag: string): boolean {
  const tags = entityTags(ifMatch)
  if (tags === null) return true
  return tags.some((tag) => tag === '*' || tag === etag)
}

/** RFC 9110 §13.1.2, for a resource that exists: true when `*` or one of its tags equals `etag` weakly. */
function ifNoneMatchMatches(ifNoneMatch: string | string[] | undefined, etag: string): boolean {
  const tags = entityTags(ifNoneMatch)
  if (tags === null) return false
  return tags.some((tag) => tag === '*' || tag.replace(/^W\//, '') === etag)
}

/** Throws 412 precondition_failed unless `ifMatch` (an If-Match header or a bulk item's if_match) holds. */
export function assertIfMatch(ifMatch: string | string[] | undefined, representation: unknown): void {
  if (!ifMatchHolds(ifMatch, etagOf(representation))) throw new PreconditionFailedError()
}

/**
 * The If-Match check of a write, inside its transaction: `lock` locks the row FOR UPDATE and returns
 * the resource as GET shows it, so a concurrent editor waits and then sees the new tag. Without an
 * If-Match header nothing is read.
 */
export async function checkIfMatch(request: FastifyRequest, lock: () => Promise<unknown>): Promise<void> {
  const ifMatch = request.headers['if-match']
  if (ifMatch === undefined) return
  assertIfMatch(ifMatch, await lock())
}

/** Sets the ETag of the resource's representation as GET returns it, on the answer to a write. */
export function setETag(reply: FastifyReply, representation: unknown): void {
  reply.header('etag', etagOf(representation))
}

/**
 * What `config: { etag: 'read' }` (a GET of one resource) or `config: { etag: 'write' }` (a change
 * that accepts If-Match) adds to a route: read routes answer with an ETag and 304 on a matching
 * If-None-Match; both get their headers and answers in the OpenAPI document.
 */
export type ETagRouteConfig = { etag?: 'read' | 'write' }

declare module 'fastify' {
  interface FastifyContextConfig extends ETagRouteConfig {}
}

const ETAG_HEADER = {
  etag: {
    type: 'string',
    description: 'The entity tag of the resource as GET returns it; send it as If-Match to change it safely',
  },
}

const CONDITION_HEADERS = {
  read: {
    'if-none-match': {
      type: 'string',
      maxLength: 4096,
      description: 'An ETag from an earlier GET (or *): 304 Not Modified when the resource has not changed',
    },
  },
  write: {
    'if-match': {
      type: 'string',
      maxLength: 4096,
      description:
        'The ETag from your last GET (or *): the change is made only if the resource is still that one, else 412 precondition_failed',
    },
  },
}

/** onRoute: the conditional headers and answers of routes with `config.etag`, for validation and the document. */
export function documentConditionalRequests(route: RouteOptions): void {
  const mode = (route.config as ETagRouteConfig | undefined)?.etag
  const schema = route.schema as RouteSchemaWithHeaders | undefined
  if (!mode || !schema?.response) return
  addHeaderParameters(schema, CONDITION_HEADERS[mode])
  const ok = schema.response[200]
  if (ok && typeof ok === 'object' && !('headers' in ok)) schema.response[200] = { ...ok, headers: ETAG_HEADER }
  if (mode === 'read') schema.response[304] = { type: 'null' }
  else schema.response[412] = { $ref: 'Problem' }
}

/** preSerialization: the ETag of a read route's answer, and 304 when the caller's copy is current. */
export async function answerConditionalRead(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
  if (request.routeOptions.config.etag !== 'read' || reply.statusCode !== 200) return payload
  const etag = etagOf(payload)
  reply.header('etag', etag)
  if (!ifNoneMatchMatches(request.headers['if-none-match'], etag)) return payload
  reply.code(304)
  return null
}
