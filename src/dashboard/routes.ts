import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { IdParams } from '../http/schemas.js'

const PAGE_DIR = fileURLToPath(new URL('../../public/dashboard/', import.meta.url))
const UPLOT_DIR = fileURLToPath(new URL('../../node_modules/uplot/dist/', import.meta.url))
// Of the charting library's package, only the two files the page loads.
const UPLOT_FILES = ['uPlot.esm.js', 'uPlot.min.css']

/**
 * The dashboard page: static files that call the public API from the browser, so nothing here
 * but serving. Hidden from the OpenAPI document, like /docs.
 */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: PAGE_DIR,
    prefix: '/dashboard/',
    index: false,
    wildcard: false,
    schemaHide: true,
  })
  const hidden = { schema: { hide: true } }
  const page = (file: string) => (_request: unknown, reply: FastifyReply) =>
    reply.header('cache-control', 'no-cache').sendFile(file)
  app.get('/dashboard', hidden, page('index.html'))
  // The leads behind a figure (the filters are the page's query string), and one lead, the page mails link to.
  app.get('/dashboard/leads', hidden, page('leads.html'))
  app.get('/dashboard/leads/:id', { schema: { hide: true, params: IdParams } }, page('lead.html'))
  for (const file of UPLOT_FILES) {
    app.get(`/dashboard/vendor/uplot/${file}`, hidden, (_request, reply) => reply.sendFile(file, UPLOT_DIR))
  }
}
