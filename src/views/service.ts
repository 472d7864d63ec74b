import { type Selectable, sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { type Page, type PageRequest, paginate } from '../db/paginate.js'
import type { DB, SavedViews, ViewResource } from '../db/types.js'
import { ForbiddenError, NotFoundError } from '../errors/domain.js'

export type SavedView = Omit<Selectable<SavedViews>, 'filters'> & { filters: Record<string, unknown> }

export interface SavedQuery {
  filters: Record<string, unknown>
  sort: string | null
}

/**
 * Checks a view's filters and sort against its list's own query schema and returns them as that
 * list reads them (single values of repeatable filters as arrays); a bad one is a 400 naming
 * `filters.<name>` or `sort`. Given by the route, which holds the schemas' validators.
 */
export type CheckSavedQuery = (resource: ViewResource, query: { filters?: unknown; sort?: string | null }) => SavedQuery

export interface NewView {
  name: string
  resource: ViewResource
  filters?: Record<string, unknown>
  sort?: string | null
  shared?: boolean
}

export interface ViewPatch {
  name?: string
  filters?: Record<string, unknown>
  sort?: string | null
  shared?: boolean
}

const VIEW_COLUMNS = [
  'saved_views.id',
  'saved_views.owner_id',
  'saved_views.name',
  'saved_views.resource',
  'saved_views.filters',
  'saved_views.sort',
  'saved_views.shared',
  'saved_views.created_at',
  'saved_views.updated_at',
] as const

/** The views the caller may read: their own and the shared ones. Any other is a 404. */
function visibleViews(db: Database, actor: AuthenticatedActor) {
  return db
    .selectFrom('saved_views')
    .where((eb) => eb.or([eb('saved_views.owner_id', '=', actor.userId), eb('saved_views.shared', '=', true)]))
}

const asView = (row: Selectable<SavedViews>): SavedView => row as SavedView

export async function createView(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  input: NewView,
  check: CheckSavedQuery,
): Promise<SavedView> {
  const saved = check(input.resource, { filters: input.filters ?? {}, sort: input.sort ?? null })
  const view = await trx
    .insertInto('saved_views')
    .values({
      owner_id: actor.userId,
      name: input.name.trim(),
      resource: input.resource,
      filters: JSON.stringify(saved.filters),
      sort: saved.sort,
      shared: input.shared ?? false,
    })
    .returning(VIEW_COLUMNS)
    .executeTakeFirstOrThrow()
  await writeAudit(trx, actor, {
    table: 'saved_views',
    recordId: view.id,
    action: 'create',
    oldValues: null,
    newValues: view,
  })
  return asView(view)
}

export async function getView(db: Database, actor: AuthenticatedActor, id: number): Promise<SavedView> {
  const view = await visibleViews(db, actor).select(VIEW_COLUMNS).where('saved_views.id', '=', id).executeTakeFirst()
  if (!view) throw new NotFoundError('View')
  return asView(view)
}

export async function listViews(
  db: Database,
  actor: AuthenticatedActor,
  query: PageRequest & { resource?: ViewResource },
): Promise<Page<SavedView>> {
  let matching = visibleViews(db, actor)
  if (query.resource) matching = matching.where('saved_views.resource', '=', query.resource)
  const page = await paginate(db, {
    matching,
    select: (views) => views.select(VIEW_COLUMNS),
    order: { keys: [], id: 'saved_views.id', direction: 'asc' },
    page: query,
    filters: { resource: query.resource },
  })
  return { ...page, items: page.items.map(asView) }
}

/** A view the caller may change: their own, or a shared one when they are an admin. */
async function lockEditableView(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<SavedView> {
  const view = await visibleViews(trx, actor)
    .select(VIEW_COLUMNS)
    .where('saved_views.id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  if (!view) throw new NotFoundError('View')
  if (view.owner_id !== actor.userId && actor.role !== 'admin') {
    throw new ForbiddenError('A shared view is changed by its owner or an admin')
  }
  return asView(view)
}

/** Keys in a stable order, so that the same filters compare equal however they were written. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonical(inner)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export async function updateView(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  id: number,
  patch: ViewPatch,
  check: CheckSavedQuery,
): Promise<SavedView> {
  const current = await lockEditableView(trx, actor, id)
  const saved =
    patch.filters !== undefined || patch.sort !== undefined
      ? check(current.resource, {
          filters: patch.filters ?? current.filters,
          sort: patch.sort === undefined ? current.sort : patch.sort,
        })
      : undefined
  const changes = diff(current, {
    name: patch.name?.trim(),
    shared: patch.shared,
    sort: saved?.sort,
    filters: saved && canonical(saved.filters) !== canonical(current.filters) ? saved.filters : undefined,
  })
  if (!changes) return current
  const { filters, ...set } = changes.set
  const updated = await trx
    .updateTable('saved_views')
    .set({ ...set, ...(filters !== undefined && { filters: JSON.stringify(filters) }), updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(VIEW_COLUMNS)
    .executeTakeFirstOrThrow()
  await writeAudit(trx, actor, {
    table: 'saved_views',
    recordId: id,
    action: 'update',
    oldValues: changes.oldValues,
    newValues: changes.newValues,
  })
  return asView(updated)
}

export async function deleteView(trx: Transaction<DB>, actor: AuthenticatedActor, id: number): Promise<void> {
  const current = await lockEditableView(trx, actor, id)
  await trx.deleteFrom('saved_views').where('id', '=', id).execute()
  await writeAudit(trx, actor, {
    table: 'saved_views',
    recordId: id,
    action: 'delete',
    oldValues: current,
    newValues: null,
  })
}
