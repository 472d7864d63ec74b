import Fastify, { type FastifyInstance } from 'fastify'
import type { MetricsScraper } from './database.js'
import { metricsRoutes } from './routes.js'

/** METRICS_PORT: a listener of its own that serves GET /metrics only, without a token. */
export async function startMetricsListener(
  scraper: MetricsScraper,
  where: { host: string; port: number },
): Promise<FastifyInstance> {
  const server = Fastify({ logger: false })
  await server.register(metricsRoutes, { scraper })
  await server.listen(where)
  return server
}
