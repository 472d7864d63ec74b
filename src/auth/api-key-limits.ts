import type { FastifyRequest, RouteOptions } from 'fastify'
import { ForbiddenError } from '../errors/domain.js'

/**
 * `config: { apiKeys: 'refused' }` on a route that a person's token may use but an API key may not,
 * or `{ apiKeys: ['password', 'role'] }` when only a body with one of those fields is refused. These
 * are the routes that would let a leaked key outlive its revocation: making users, keys, secrets,
 * passwords and roles, pointing a webhook elsewhere, and the settings of the integrations.
 */
export type ApiKeyRouteConfig = { apiKeys?: 'refused' | readonly string[] }

declare module 'fastify' {
  interface FastifyContextConfig extends ApiKeyRouteConfig {}
}

interface DocumentedSchema {
  description?: string
  response?: Record<string, unknown>
}

/** onRoute: the 403 and the sentence saying so in the route's OpenAPI description. */
export function documentApiKeyLimits(route: RouteOptions): void {
  const refused = (route.config as ApiKeyRouteConfig | undefined)?.apiKeys
  const schema = route.schema as DocumentedSchema | undefined
  if (!refused || !schema?.response) return
  const when = refused === 'refused' ? 'With an API key' : `With an API key, a body with ${refused.join(' or ')}`
  const sentence = `${when} is refused: 403 not_allowed_for_api_keys (sign in as a person).`
  schema.description = schema.description ? `${schema.description} ${sentence}` : sentence
  schema.response[403] ??= { $ref: 'Problem' }
}

/**
 * preValidation: refuses an API key on the routes marked so, before the body is validated, so the
 * answer does not depend on what the body holds beyond the refused fields.
 */
export async function refuseApiKeysWhereNotAllowed(request: FastifyRequest): Promise<void> {
  const refused = request.routeOptions.config.apiKeys
  if (!refused || request.actor?.via?.type !== 'api_key') return
  if (refused !== 'refused') {
    const body = request.body
    if (typeof body !== 'object' || body === null || !refused.some((field) => field in body)) return
  }
  throw new ForbiddenError(
    'API keys may not do this, so that a leaked key cannot outlive its revocation: use a signed-in token',
    'not_allowed_for_api_keys',
  )
}
