import { Type } from '@sinclair/typebox'
import { ACTIVITY_DIRECTIONS, ACTIVITY_TYPES } from '../db/enums.js'
import { DateTime, Id, Nullable, Page, pageLimits, ref, StringEnum } from '../http/schemas.js'

/** The kinds people add; the others are written by the system (messages, forms, status, assignment). */
export const PEOPLE_ACTIVITY_TYPES = ['note', 'call', 'meeting', 'email'] as const

export const MAX_ACTIVITY_BODY = 10_000

export const ActivitySchema = Type.Object(
  {
    id: Id,
    lead_id: Id,
    type: StringEnum(ACTIVITY_TYPES, {
      description:
        'note, call, meeting, email: added by people; whatsapp: a message in or out; form: a web-form submission; status_change, assignment: written by the system',
    }),
    body: Nullable(Type.String()),
    direction: Nullable(StringEnum(ACTIVITY_DIRECTIONS, { description: 'For messages: inbound or outbound' })),
    occurred_at: DateTime,
    created_by: Nullable(Type.Integer({ description: 'The user who added it; null when the system or a form did' })),
    created_at: DateTime,
    meta: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'Details by type: {from, to} for status_change and assignment, the form for form, the message id and delivery state for whatsapp',
    }),
  },
  { $id: 'Activity', additionalProperties: false },
)

export const ActivityCreateSchema = Type.Object(
  {
    type: StringEnum(PEOPLE_ACTIVITY_TYPES),
    body: Type.String({ minLength: 1, maxLength: MAX_ACTIVITY_BODY, pattern: '\\S' }),
    occurred_at: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'When it happened, when not now (ISO 8601 with Z or an offset)',
      }),
    ),
  },
  {
    $id: 'ActivityCreate',
    additionalProperties: false,
    examples: [{ type: 'call', body: 'Called; sending the quote tomorrow', occurred_at: '2026-11-26T20:05:00Z' }],
  },
)

export const ActivityPageSchema = Page(ref(ActivitySchema), 'ActivityPage')

export const ActivityListQuery = Type.Object(pageLimits(), { additionalProperties: false })

export const ActivityParams = Type.Object({ id: Id, activity_id: Id }, { additionalProperties: false })

export const activitySchemas = [ActivitySchema, ActivityCreateSchema, ActivityPageSchema]
