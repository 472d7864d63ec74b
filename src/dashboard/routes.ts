import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

const PAGE_DIR = fileURLToPath(new URL('../../public/dashboard/', import.meta.url))
const UPLOT_DIR = fileURLToPath(new URL('../../node_modules/uplot/dist/', import.meta.url))
// Only the two files the page loads, not the rest of the package.
const UPLOT_FILES = new Set(['uPlot.esm.js', 'uPlot.min.css'])

/**
 * The dashboard page: static files that call the public API from the browser, so they need no
 * route of their own beyond serving. Hidden from the OpenAPI document, like /docs.
 */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: PAGE_DIR,
    prefix: '/dashboard/',
    index: false,
    wildcard: false,
    schemaHide: true,
    cacheControl: false,
  })
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: '/dashboard/vendor/uplot/',
    decorateReply: false,
    wildcard: false,
    schemaHide: true,
    allowedPath: (pathName) => UPLOT_FILES.has(pathName.replace(/^\//, '')),
  })
  app.get('/dashboard', { schema: { hide: true } }, (_request, reply) =>
    reply.header('cache-control', 'no-cache').sendFile('index.html'),
  )
}
