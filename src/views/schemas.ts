import { type TObject, type TSchema, Type } from '@sinclair/typebox'
import { VIEW_RESOURCES } from '../db/enums.js'
import { DateTime, Id, Page, pageLimits, ref, StringEnum } from '../http/schemas.js'

const ViewResourceSchema = StringEnum(VIEW_RESOURCES, {
  $id: 'ViewResource',
  description: 'The list a view applies to: GET /leads or GET /clients (and their exports; leads also their stats)',
})

// A query parameter's value, or a repeatable one's values: no deeper, so a nested body is a 400 here.
const FilterValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()])
const Filters = Type.Record(Type.String(), Type.Union([FilterValue, Type.Array(FilterValue, { maxItems: 100 })]), {
  description:
    'The list’s query parameters as an object, arrays for repeatable ones ({"status": ["new"], "channel": ["web"]}); checked against the list when saved',
  examples: [{ status: ['new', 'contacted'], channel: ['web'] }],
})
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' })
const Sort = Type.String({ description: 'One of the list’s sorts (-field for descending); null: the list’s default' })

export const ViewSchema = Type.Object(
  {
    id: Id,
    owner_id: Type.Integer({ description: 'The user who saved it' }),
    name: Type.String(),
    resource: ref(ViewResourceSchema),
    filters: Type.Record(Type.String(), Type.Unknown()),
    sort: Type.Union([Type.String(), Type.Null()]),
    shared: Type.Boolean({ description: 'Visible to everyone; editable by its owner and admins' }),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'View', additionalProperties: false },
)

export const ViewCreateSchema = Type.Object(
  {
    name: Name,
    resource: ref(ViewResourceSchema),
    filters: Type.Optional(Filters),
    sort: Type.Optional(Type.Union([Sort, Type.Null()])),
    shared: Type.Optional(Type.Boolean({ default: false })),
  },
  {
    $id: 'ViewCreate',
    additionalProperties: false,
    examples: [
      {
        name: 'Nuevos de la web',
        resource: 'leads',
        filters: { status: ['new'], channel: ['web'] },
        sort: '-created_at',
        shared: false,
      },
    ],
  },
)

export const ViewUpdateSchema = Type.Object(
  {
    name: Type.Optional(Name),
    filters: Type.Optional(Filters),
    sort: Type.Optional(Type.Union([Sort, Type.Null()])),
    shared: Type.Optional(Type.Boolean()),
  },
  { $id: 'ViewUpdate', additionalProperties: false, examples: [{ shared: true }] },
)

export const ViewListQuery = Type.Object(
  { resource: Type.Optional(ref(ViewResourceSchema)), ...pageLimits() },
  { additionalProperties: false },
)

export const ViewPageSchema = Page(ref(ViewSchema), 'ViewPage')

const NOT_SAVED = new Set(['limit', 'offset', 'cursor', 'view', 'sort'])

/**
 * What a view of a list may hold, from the list's own query schema: its filters (no paging, no
 * view in a view), and its sort without the default, so that an absent sort stays absent.
 */
export function savedQuerySchemas(listQuery: TObject): { filters: TObject; sort: TSchema } {
  const properties: Record<string, TSchema> = Object.fromEntries(
    Object.entries(listQuery.properties).filter(([name]) => !NOT_SAVED.has(name)),
  )
  const { default: _default, ...sort } = listQuery.properties.sort as TSchema
  return { filters: Type.Object(properties, { additionalProperties: false }), sort: sort as TSchema }
}

export const viewSchemas = [ViewResourceSchema, ViewSchema, ViewCreateSchema, ViewUpdateSchema, ViewPageSchema]
