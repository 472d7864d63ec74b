import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { CountryCode } from 'libphonenumber-js'
import type { Database } from '../db/database.js'
import { ref } from '../http/schemas.js'
import { SearchPageSchema, SearchQuery } from './schemas.js'
import { search } from './service.js'

export const searchRoutes: FastifyPluginAsyncTypebox<{ db: Database; defaultPhoneRegion: CountryCode }> = async (
  app,
  { db, defaultPhoneRegion },
) => {
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/search',
    {
      schema: {
        operationId: 'search',
        tags: ['search'],
        summary: 'Find clients and leads by full text, best match first (sales users: among their own leads)',
        description:
          'Clients by name, company, email and phone; leads by their notes. Each hit has a snippet with the matched words in <mark>…</mark> and everything else HTML-escaped. A query of stop words or symbols only finds nothing.',
        querystring: SearchQuery,
        response: { 200: ref(SearchPageSchema) },
      },
    },
    async (request) => search(db, request.actor, request.query, defaultPhoneRegion),
  )
}
