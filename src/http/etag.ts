import { hash } from 'node:crypto'
import { type TSchema, Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { PreconditionFailedError } from '../errors/domain.js'
import { addHeaderParameters, type RouteSchemaWithHeaders } from './openapi.js'

/** The strong entity tag of a representation's text, as GET sends it. */
function etagOfText(text: string): string {
  return `"${hash('sha256', text, 'base64url').slice(0, 27)}"`
}

// One schema object per representation, so that Fastify compiles its serializer once per route.
const representationSchemas = new Map<string, TSchema>()

/**
 * The entity tag of `value` (a user, a client with its leads, a lead) as its GET route answers it:
 * the hash of the text that GET's response schema serializes it to, by the serializer Fastify
 * compiles for that schema. A read hashes the text it sends (`answerConditionalRead`), so a tag from
 * a GET, from a write's answer and from the row a write locks are always comparable, and a read pays
 * for no second serialization.
 */
export function etagFor(reply: FastifyReply, schema: TSchema, value: unknown): string {
  const id = schema.$id
  if (!id) throw new Error("etagFor() needs the $id of the GET route's response schema")
  let representation = representationSchemas.get(id)
  if (!representation) {
    representation = Type.Ref(id)
    representationSchemas.set(id, representation)
  }
  return etagOfText(reply.compileSerializationSchema(representation)(value as Record<string, unknown>))
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

/** Throws 412 precondition_failed unless `ifMatch` (an If-Match header or a bulk item's if_match) holds for `etag`. */
export function assertIfMatch(ifMatch: string | string[] | undefined, etag: string): void {
  if (!ifMatchHolds(ifMatch, etag)) throw new PreconditionFailedError()
}

/**
 * The If-Match check of a write, inside its transaction: `lock` locks the row FOR UPDATE and returns
 * the resource as GET (whose response schema is `schema`) shows it, so a concurrent editor waits and
 * then sees the new tag. Without an If-Match header nothing is read.
 */
export async function checkIfMatch(
  request: FastifyRequest,
  reply: FastifyReply,
  schema: TSchema,
  lock: () => Promise<unknown>,
): Promise<void> {
  const ifMatch = request.headers['if-match']
  if (ifMatch === undefined) return
  assertIfMatch(ifMatch, etagFor(reply, schema, await lock()))
}

/** Sets the ETag of the resource as GET (whose response schema is `schema`) returns it, on the answer to a write. */
export function setETag(reply: FastifyReply, schema: TSchema, representation: unknown): void {
  reply.header('etag', etagFor(reply, schema, representation))
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

/** onSend: the ETag of a read route's answer (the hash of the text sent), and 304 when the caller's copy is current. */
export async function answerConditionalRead(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
  if (request.routeOptions.config.etag !== 'read' || reply.statusCode !== 200 || typeof payload !== 'string') {
    return payload
  }
  const etag = etagOfText(payload)
  reply.header('etag', etag)
  if (!ifNoneMatchMatches(request.headers['if-none-match'], etag)) return payload
  reply.code(304)
  reply.removeHeader('content-type')
  // HEAD keeps the text: Fastify's HEAD handler measures it for Content-Length and sends no body.
  return request.method === 'HEAD' ? payload : null
}
