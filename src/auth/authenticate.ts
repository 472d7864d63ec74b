import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { sql } from 'kysely'
import type { Database } from '../db/database.js'
import type { UserRole } from '../db/types.js'
import { ForbiddenError, UnauthorizedError } from '../errors/domain.js'
import type { Actor } from './actor.js'
import { refuseApiKeysWhereNotAllowed } from './api-key-limits.js'
import { hashApiKey, isApiKey } from './api-keys.js'

export interface TokenClaims {
  sub: string
  role: UserRole
  /** The user's token_version when the token was issued. */
  ver: number
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims
    user: TokenClaims
  }
}

export interface AuthenticatedActor extends Actor {
  userId: number
  role: UserRole
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>
    requireRole(...roles: UserRole[]): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Call after a committed change to a user, so this instance stops trusting its cached state at once. */
    forgetUserState(userId: number): void
  }
  interface FastifyRequest {
    actor: AuthenticatedActor
  }
}

// A token issued further in the future than clocks drift apart was not issued by us.
const MAX_CLOCK_SKEW_MS = 60_000

// What a `read` API key may do; every other method writes.
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The bearer credential of the request, or undefined without one. */
function bearerToken(request: FastifyRequest): string | undefined {
  return /^Bearer +(\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
}

interface UserState {
  username: string
  role: UserRole
  isActive: boolean
  tokenVersion: number
}

/**
 * Verifies the bearer token (an API key when it starts with crm_, else a JWT), then checks it against the user's row: a changed password, role or
 * is_active bumps token_version, and a deleted user has no row. The row is cached for at most
 * `cacheMs` (≤ 5 s), so a revocation reaches every instance within that time.
 */
export const authenticationPlugin = fp<{ db: Database; cacheMs: number }>(
  async (app: FastifyInstance, { db, cacheMs }) => {
    const cache = new Map<number, { state: UserState | null; loadedAt: number }>()

    async function loadState(userId: number): Promise<UserState | null> {
      const cached = cache.get(userId)
      if (cached && Date.now() - cached.loadedAt < cacheMs) return cached.state
      const row = await db
        .selectFrom('users')
        .select(['username', 'role', 'is_active', 'token_version'])
        .where('id', '=', userId)
        .executeTakeFirst()
      const state = row
        ? { username: row.username, role: row.role, isActive: row.is_active, tokenVersion: row.token_version }
        : null
      if (cache.size > 10_000) cache.clear()
      cache.set(userId, { state, loadedAt: Date.now() })
      return state
    }

    /**
     * An API key (crm_...), looked up by its hash on every request, with no cache: a revoked key
     * (its row deleted) or a deactivated owner is refused at once on every instance.
     */
    async function authenticateApiKey(request: FastifyRequest, key: string): Promise<AuthenticatedActor> {
      const found = await db
        .selectFrom('api_keys')
        .innerJoin('users', 'users.id', 'api_keys.user_id')
        .select(['api_keys.id', 'api_keys.name', 'api_keys.scopes', 'users.id as user_id', 'users.username'])
        .select(['users.role', 'users.is_active'])
        .select(sql<boolean>`api_keys.expires_at is not null and api_keys.expires_at <= now()`.as('expired'))
        .select(
          sql<boolean>`api_keys.last_used_at is null or api_keys.last_used_at < now() - interval '1 minute'`.as(
            'use_unrecorded',
          ),
        )
        .where('api_keys.key_hash', '=', hashApiKey(key))
        .executeTakeFirst()
      if (!found) throw new UnauthorizedError('Missing or invalid bearer token')
      if (found.expired) throw new UnauthorizedError('The API key has expired')
      if (!found.is_active) throw new UnauthorizedError('The API key has been revoked')
      if (found.use_unrecorded) {
        // At most one write a minute per key, across instances: the condition is checked again by
        // the UPDATE itself. Outside any transaction of the request, so a rollback keeps it.
        await db
          .updateTable('api_keys')
          .set({ last_used_at: sql`now()` })
          .where('id', '=', found.id)
          .where((eb) =>
            eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`)]),
          )
          .execute()
      }
      if (!found.scopes.includes('write') && !READ_METHODS.has(request.method)) {
        throw new ForbiddenError('This API key may only read: its scopes are ["read"]', 'insufficient_scope')
      }
      return {
        userId: found.user_id,
        username: found.username,
        role: found.role,
        requestId: request.id,
        via: { type: 'api_key', id: found.id, name: found.name },
      }
    }

    app.decorateRequest('actor', null as unknown as AuthenticatedActor)

    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = bearerToken(request)
      if (token !== undefined && isApiKey(token)) {
        request.actor = await authenticateApiKey(request, token)
        return
      }
      let claims: TokenClaims
      try {
        claims = await request.jwtVerify<TokenClaims>()
      } catch (error) {
        const expired = (error as { code?: string }).code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED'
        throw new UnauthorizedError(expired ? 'The token has expired' : 'Missing or invalid bearer token')
      }
      const userId = Number(claims.sub)
      const issuedAt = (claims as { iat?: unknown }).iat
      if (
        !Number.isSafeInteger(userId) ||
        userId < 1 ||
        !Number.isInteger(claims.ver) ||
        typeof issuedAt !== 'number' ||
        issuedAt * 1000 > Date.now() + MAX_CLOCK_SKEW_MS
      ) {
        throw new UnauthorizedError('Missing or invalid bearer token')
      }
      const state = await loadState(userId)
      if (!state?.isActive || state.tokenVersion !== claims.ver || state.role !== claims.role) {
        throw new UnauthorizedError('The token has been revoked')
      }
      request.actor = { userId, username: state.username, role: state.role, requestId: request.id }
    })

    app.decorate('requireRole', (...roles: UserRole[]) => async (request: FastifyRequest) => {
      if (!roles.includes(request.actor.role)) throw new ForbiddenError()
    })

    app.addHook('preValidation', refuseApiKeysWhereNotAllowed)

    app.decorate('forgetUserState', (userId: number) => {
      cache.delete(userId)
    })
  },
  { name: 'authentication', dependencies: ['@fastify/jwt'] },
)
