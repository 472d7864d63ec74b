import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { MAX_COUNTED, MAX_OFFSET, OFFSET_TOO_DEEP } from '../db/paginate.js'
import { ERROR_MESSAGE } from './validation.js'

/** A `$ref` to a named component schema that keeps the static type of its target. */
export function ref<T extends TSchema>(schema: T) {
  if (!schema.$id) throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id))
}

/** A string enum as `{type: string, enum}`: one clear error message and one type in generated clients. */
export function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })
}

/** Serialised from the Date that PostgreSQL gives, as ISO 8601 in UTC with a Z. */
export const DateTime = Type.Unsafe<Date | string>({
  type: 'string',
  format: 'date-time',
  examples: ['2026-11-26T20:05:00.000Z'],
})
export const NullableDateTime = Type.Unsafe<Date | string | null>({
  type: ['string', 'null'],
  format: 'date-time',
})

export const MAX_ID = 2_147_483_647
export const Id = Type.Integer({ minimum: 1, maximum: MAX_ID })
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false })

/** A date (a whole UTC day) or a timestamp with its offset. */
export const DateOrTimestamp = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:\\d{2}))?$',
  description: 'A date (2026-11-26, a whole UTC day) or an ISO 8601 timestamp with Z or an offset',
})

export const Email = Type.String({ format: 'email', maxLength: 254 })

const MAX_LIMIT = 200

/** limit, and offset or cursor: the paging parameters of every list (see src/db/paginate.ts). */
export const pageLimits = (defaultLimit = 50) => ({
  limit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: defaultLimit }),
  offset: Type.Integer({
    minimum: 0,
    maximum: MAX_OFFSET,
    default: 0,
    description: `0–${MAX_OFFSET}; deeper pages are read with cursor (a larger offset is a 400)`,
    [ERROR_MESSAGE]: { maximum: OFFSET_TOO_DEEP },
  }),
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'The next_cursor of the previous page; the same filters and sort are required',
    }),
  ),
})

/** Paging, and a sort drawn from `fields` (`-field` for descending). */
export function pageQuery<const F extends readonly string[]>(fields: F, defaultSort: string) {
  const sorts = fields.flatMap((field) => [field, `-${field}`]) as Array<F[number] | `-${F[number]}`>
  return {
    ...pageLimits(),
    sort: StringEnum(sorts, {
      default: defaultSort,
      description: `One of ${fields.join(', ')}; prefix - for descending`,
    }),
  }
}

export function Page<T extends TSchema>(item: T, id: string) {
  return Type.Object(
    {
      items: Type.Array(item),
      total: Type.Integer({
        minimum: 0,
        maximum: MAX_COUNTED,
        description: `The number of matches, exact up to ${MAX_COUNTED}; ${MAX_COUNTED} with total_exact false beyond`,
      }),
      total_exact: Type.Boolean(),
      limit: Type.Integer(),
      offset: Type.Integer(),
      next_cursor: Nullable(Type.String({ description: 'Pass as cursor for the next page; null on the last page' })),
    },
    { $id: id, additionalProperties: false },
  )
}

const FieldErrorSchema = Type.Object({ field: Type.String(), message: Type.String() }, { $id: 'FieldError' })

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'A stable machine-readable error code' }),
    detail: Type.String(),
    request_id: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(ref(FieldErrorSchema))),
  },
  { $id: 'Problem', additionalProperties: true, description: 'An RFC 9457 problem+json body' },
)

export const httpSchemas = [FieldErrorSchema, ProblemSchema]

/**
 * The error answers particular to a route (403, 404, 409, 412, 429, 502; 401 where no token is needed),
 * as problem+json. Those every route of its kind gives (400, 401, 413, 415, 503; 403 and 409 for a
 * write) are added by completeRouteDocumentation (http/openapi.ts).
 */
export function problems(...statuses: Array<401 | 403 | 404 | 406 | 408 | 409 | 412 | 413 | 415 | 422 | 429 | 502>) {
  return Object.fromEntries(statuses.map((status) => [status, ref(ProblemSchema)])) as Record<
    (typeof statuses)[number],
    ReturnType<typeof ref<typeof ProblemSchema>>
  >
}

/**
 * `type: [T, 'null']`, as OpenAPI 3.1 writes it, rather than an anyOf. An `enum` is a list of the
 * only values allowed, whatever `type` says: null joins it too, or null would be refused.
 */
export function Nullable<T extends TSchema>(schema: T) {
  if (typeof schema.type !== 'string') throw new Error('Nullable() needs a schema with one type')
  return Type.Unsafe<Static<T> | null>({
    ...schema,
    type: [schema.type, 'null'],
    ...(Array.isArray(schema.enum) && { enum: [...schema.enum, null] }),
  })
}

/** `view` on a list, its export and (leads) its stats: the saved view whose filters and sort apply. */
export const viewParameter = {
  view: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_ID,
      description: 'A saved view (GET /views) whose filters and sort apply; parameters given here override its own',
    }),
  ),
}
