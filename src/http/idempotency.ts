import { createHmac } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { type ExpressionBuilder, sql } from 'kysely'
import { configure } from 'safe-stable-stringify'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { ConflictError, DomainError } from '../errors/domain.js'
import { addHeaderParameters, type RouteSchemaWithHeaders } from './openapi.js'

// Claims are compared by their time, which JavaScript reads to the millisecond: taken at that precision.
const CLAIM_TIME = sql<Date>`date_trunc('milliseconds', now())`
/** How long a key's first answer is replayed. */
const KEY_LIFETIME = '24 hours'
/**
 * A claim whose request has not answered in this time belongs to a process that died (requests
 * end in seconds: statements time out after 15 s): a repeat may then run the request itself.
 */
const ABANDONED_AFTER = '2 minutes'
/** JSON with keys sorted at every depth: the same body always gives the same text, whatever its key order. */
const canonicalJson = configure({ deterministic: true, bigint: true, circularValue: TypeError })

const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7E]{1,255}$'

/** `config: { idempotent: true }` on a route that creates something: it honours Idempotency-Key. */
export type IdempotencyRouteConfig = { idempotent?: boolean }

declare module 'fastify' {
  interface FastifyContextConfig extends IdempotencyRouteConfig {}
  interface FastifyRequest {
    /** Set while this request holds the claim on its Idempotency-Key. */
    idempotencyClaim?: Claim
  }
}

interface Claim {
  caller: string
  key: string
  claimedAt: Date
}

/** The route's documentation and validation: the header (1–255 printable ASCII, else 400) and the answers it adds. */
export function documentIdempotency(route: RouteOptions): void {
  const schema = route.schema as RouteSchemaWithHeaders | undefined
  if (!(route.config as IdempotencyRouteConfig | undefined)?.idempotent || !schema?.response) return
  addHeaderParameters(schema, {
    'idempotency-key': {
      type: 'string',
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description:
        'Any 1–255 printable ASCII characters (a UUID is a good choice). A repeat with the same key and body within 24 hours gets the first answer again, with Idempotent-Replayed: true, and changes nothing.',
    },
  })
  const created = schema.response[201]
  if (created && typeof created === 'object' && !('headers' in created)) {
    schema.response[201] = {
      ...created,
      headers: {
        location: { type: 'string', description: 'The new resource' },
        'idempotent-replayed': {
          type: 'string',
          enum: ['true'],
          description: 'Present on a replayed answer: the request had already run',
        },
      },
    }
  }
  schema.response[409] = { $ref: 'Problem' }
  schema.response[422] = { $ref: 'Problem' }
}

/** The Idempotency-Key of the request when its route takes one. */
function idempotencyKey(request: FastifyRequest): string | undefined {
  if (!request.routeOptions.config.idempotent) return undefined
  const key = request.headers['idempotency-key']
  return typeof key === 'string' ? key : undefined
}

/** Deletes the keys past their 24 hours (run in the background by the server). */
export async function purgeExpiredIdempotencyKeys(db: Database): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', sql<Date>`now()`).executeTakeFirst()
  return Number(result.numDeletedRows)
}

/**
 * Idempotency-Key on the routes that opt in (`config: { idempotent: true }`), across instances:
 * the first request commits a claim row (INSERT ... ON CONFLICT) before it runs, so of any number
 * of concurrent repeats exactly one runs; the others find the claim and get 409 while it runs, or
 * its stored answer once it has. Answers below 500 are kept as final; a 5xx releases the claim so
 * that a retry runs the request again. Each statement commits on its own: no connection is held
 * while the request runs, which the embedded database (one connection) needs.
 */
export const idempotencyPlugin = fp<{ db: Database; secret: string }>(
  async (app: FastifyInstance, { db, secret }) => {
    app.decorateRequest('idempotencyClaim', undefined)

    /** HMAC, not a bare hash: a body may hold a password, which a fast unkeyed hash would expose to guessing. */
    const requestHash = (request: FastifyRequest) =>
      createHmac('sha256', secret)
        .update(`${request.method} ${request.url}\n${canonicalJson(request.body ?? null)}`)
        .digest()

    // After authentication and validation: only a well-formed request of a known caller claims a key.
    app.addHook('preHandler', async (request, reply) => {
      const key = idempotencyKey(request)
      if (key === undefined) return
      const via = request.actor.via
      const caller = via?.type === 'api_key' ? `api_key:${via.id}` : `user:${request.actor.userId}`
      const hash = requestHash(request)
      // Takes the key when it is new, expired, or claimed by a process that died on the same request.
      const claimed = await db
        .insertInto('idempotency_keys')
        .values({
          caller,
          key,
          request_hash: hash,
          claimed_at: CLAIM_TIME,
          expires_at: sql`now() + ${KEY_LIFETIME}::interval`,
        })
        .onConflict((conflict) =>
          conflict
            .columns(['caller', 'key'])
            .doUpdateSet({
              request_hash: (eb) => eb.ref('excluded.request_hash'),
              claimed_at: CLAIM_TIME,
              expires_at: (eb) => eb.ref('excluded.expires_at'),
              response_status: null,
              response_body: null,
              response_content_type: null,
              response_location: null,
            })
            .where((eb) =>
              eb.or([
                eb('idempotency_keys.expires_at', '<=', sql<Date>`now()`),
                eb.and([
                  eb('idempotency_keys.response_status', 'is', null),
                  eb('idempotency_keys.claimed_at', '<', sql<Date>`now() - ${ABANDONED_AFTER}::interval`),
                  eb('idempotency_keys.request_hash', '=', hash),
                ]),
              ]),
            ),
        )
        .returning('claimed_at')
        .executeTakeFirst()
      if (claimed) {
        request.idempotencyClaim = { caller, key, claimedAt: claimed.claimed_at }
        return
      }
      const first = await db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('caller', '=', caller)
        .where('key', '=', key)
        .executeTakeFirst()
      // Gone between the two statements (purged, or released by a 5xx): the caller may simply retry.
      if (!first || first.response_status === null) {
        throw new ConflictError(
          'idempotency_in_progress',
          'A request with this Idempotency-Key is still running; retry once it has answered',
        )
      }
      if (!first.request_hash.equals(hash)) {
        throw new DomainError(
          422,
          'idempotency_key_reused',
          'This Idempotency-Key was used with another request (method, path or body); use a new key for a new request',
        )
      }
      if (first.response_location) reply.header('location', first.response_location)
      if (first.response_content_type) reply.header('content-type', first.response_content_type)
      return reply
        .code(first.response_status)
        .header('idempotent-replayed', 'true')
        .send(first.response_body ?? '')
    })

    app.addHook('onSend', async (request, reply, payload) => {
      const claim = request.idempotencyClaim
      if (!claim) return payload
      request.idempotencyClaim = undefined
      await settleClaim(db, claim, reply, payload)
      return payload
    })

    // A request that ended without an answer being sent (the connection dropped) releases its claim.
    app.addHook('onResponse', async (request) => {
      const claim = request.idempotencyClaim
      if (claim) await releaseClaim(db, claim)
    })
  },
  { name: 'idempotency', dependencies: ['authentication'] },
)

/** Before the answer leaves: kept as final below 500, released at 500 and above. */
async function settleClaim(db: Database, claim: Claim, reply: FastifyReply, payload: unknown): Promise<void> {
  if (reply.statusCode >= 500) {
    await releaseClaim(db, claim)
    return
  }
  const location = reply.getHeader('location')
  const contentType = reply.getHeader('content-type')
  await db
    .updateTable('idempotency_keys')
    .set({
      response_status: reply.statusCode,
      response_body: typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString() : '',
      response_content_type: typeof contentType === 'string' ? contentType : null,
      response_location: typeof location === 'string' ? location : null,
    })
    .where(isOwnClaim(claim))
    .execute()
}

async function releaseClaim(db: Database, claim: Claim): Promise<void> {
  await db.deleteFrom('idempotency_keys').where(isOwnClaim(claim)).execute()
}

/** The claim row as this request took it (not one that a later repeat took over). */
function isOwnClaim(claim: Claim) {
  return (eb: ExpressionBuilder<DB, 'idempotency_keys'>) =>
    eb.and([eb('caller', '=', claim.caller), eb('key', '=', claim.key), eb('claimed_at', '=', claim.claimedAt)])
}
