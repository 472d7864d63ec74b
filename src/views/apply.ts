import type { TObject } from '@sinclair/typebox'
import type { preValidationAsyncHookHandler } from 'fastify'
import type { Database } from '../db/database.js'
import type { ViewResource } from '../db/types.js'
import { NotFoundError, ValidationError } from '../errors/domain.js'
import { getView } from './service.js'

/**
 * `?view=` on a list, its export or its stats: before validation, the view's filters and sort join
 * the query, each only where the caller sent no parameter of that name and the route takes it (the
 * stats take no sort). Validation then reads the whole as if the caller had sent it.
 */
export function applyView(db: Database, resource: ViewResource): preValidationAsyncHookHandler {
  return async (request) => {
    const query = request.query as Record<string, unknown>
    const id = Number(query.view)
    // Absent, or not an id: the route's schema names what is wrong.
    if (query.view === undefined || !Number.isSafeInteger(id) || id < 1) return
    const view = await getView(db, request.actor, id).catch((error: unknown) => {
      if (error instanceof NotFoundError) throw ValidationError.field('view', `no view ${id} that you may read`)
      throw error
    })
    if (view.resource !== resource) {
      throw ValidationError.field('view', `is a view of ${view.resource}, not of ${resource}`)
    }
    const querystring = request.routeOptions.schema?.querystring as TObject | undefined
    const accepted = new Set(Object.keys(querystring?.properties ?? {}))
    const saved = Object.entries({ ...view.filters, ...(view.sort !== null && { sort: view.sort }) }).filter(
      ([name]) => accepted.has(name) && !(name in query),
    )
    request.query = { ...Object.fromEntries(saved), ...query }
  }
}
