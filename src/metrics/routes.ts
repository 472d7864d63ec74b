import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { UnauthorizedError } from '../errors/domain.js'
import type { MetricsScraper } from './database.js'

const digest = (text: string) => createHash('sha256').update(text).digest()

/** The bearer token compared in constant time: equal-length digests, whatever was sent. */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(authorization ?? '')
  return timingSafeEqual(digest(match?.[1] ?? ''), digest(token)) && match !== null
}

/**
 * GET /metrics, Prometheus' text format. Left out of the OpenAPI document: it is for the monitoring
 * system, with a token of its own (METRICS_TOKEN) or on a port of its own (METRICS_PORT), not a user's.
 */
export const metricsRoutes: FastifyPluginAsync<{ scraper: MetricsScraper; token?: string }> = async (
  app,
  { scraper, token },
) => {
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (token !== undefined && !bearerMatches(request.headers.authorization, token)) {
      throw new UnauthorizedError('GET /metrics takes METRICS_TOKEN as its bearer token')
    }
    const text = await scraper.scrape()
    return reply.type(scraper.contentType).send(text)
  })
}
