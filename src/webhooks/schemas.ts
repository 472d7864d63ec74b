import { Type } from '@sinclair/typebox'
import { DELIVERY_STATES } from '../db/enums.js'
import { EVENT_TYPES } from '../events/outbox.js'
import { DateTime, Id, Nullable, NullableDateTime, Page, pageLimits, ref, StringEnum } from '../http/schemas.js'

export const SUBSCRIBABLE = [...EVENT_TYPES, '*'] as const

const Url = Type.String({
  minLength: 1,
  maxLength: 2000,
  description: 'https: only (http: too with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true); the host must be public',
  examples: ['https://example.com/crm-events'],
})
const Events = Type.Array(StringEnum(SUBSCRIBABLE), {
  minItems: 1,
  maxItems: SUBSCRIBABLE.length,
  uniqueItems: true,
  description: 'Event types to receive, or ["*"] for all',
})
const Description = Nullable(Type.String({ maxLength: 500 }))

const webhookFields = {
  id: Id,
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Nullable(Type.String()),
  is_active: Type.Boolean(),
  disabled_reason: Nullable(Type.String({ description: 'Why the webhook turned itself off, when it did' })),
  created_at: DateTime,
  updated_at: DateTime,
}

export const WebhookSchema = Type.Object(webhookFields, { $id: 'Webhook', additionalProperties: false })

export const WebhookWithSecretSchema = Type.Object(
  {
    ...webhookFields,
    secret: Type.String({
      description: 'whsec_ + base64 of 32 random bytes: answered only here and by rotate-secret; keep it',
    }),
  },
  { $id: 'WebhookWithSecret', additionalProperties: false },
)

export const WebhookCreateSchema = Type.Object(
  {
    url: Url,
    events: Events,
    description: Type.Optional(Description),
    is_active: Type.Optional(Type.Boolean({ default: true })),
  },
  {
    $id: 'WebhookCreate',
    additionalProperties: false,
    examples: [{ url: 'https://example.com/crm-events', events: ['lead.status_changed', 'lead.created'] }],
  },
)

export const WebhookUpdateSchema = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    description: Type.Optional(Description),
    is_active: Type.Optional(Type.Boolean()),
  },
  { $id: 'WebhookUpdate', additionalProperties: false, examples: [{ is_active: true }] },
)

export const WebhookPageSchema = Page(ref(WebhookSchema), 'WebhookPage')

export const DeliverySchema = Type.Object(
  {
    id: Type.Integer(),
    event_id: Type.String({ examples: ['evt_3f0c5b0e8a8d4c7e9a8f0c1d2e3f4a5b'] }),
    event_type: Type.String(),
    state: StringEnum(DELIVERY_STATES),
    attempts: Type.Integer(),
    last_status: Nullable(Type.Integer()),
    last_error: Nullable(Type.String()),
    next_attempt_at: NullableDateTime,
    delivered_at: NullableDateTime,
    created_at: DateTime,
  },
  { $id: 'WebhookDelivery', additionalProperties: false },
)

export const DeliveryPageSchema = Page(ref(DeliverySchema), 'WebhookDeliveryPage')

export const PageOnlyQuery = Type.Object(pageLimits(), { additionalProperties: false })

export const DeliveryParams = Type.Object({ id: Id, delivery_id: Id }, { additionalProperties: false })

export const PingResultSchema = Type.Object(
  {
    delivered: Type.Boolean(),
    status: Nullable(Type.Integer({ description: "The receiver's status code; null when it did not answer" })),
    error: Nullable(Type.String()),
    duration_ms: Type.Integer(),
  },
  { $id: 'WebhookPingResult', additionalProperties: false },
)

export const webhookSchemas = [
  WebhookSchema,
  WebhookWithSecretSchema,
  WebhookCreateSchema,
  WebhookUpdateSchema,
  WebhookPageSchema,
  DeliverySchema,
  DeliveryPageSchema,
  PingResultSchema,
]
