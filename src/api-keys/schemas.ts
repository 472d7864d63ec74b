import { Type } from '@sinclair/typebox'
import { DateTime, Id, Nullable, NullableDateTime, Page, pageLimits, ref, StringEnum } from '../http/schemas.js'

export const API_KEY_SCOPES = ['read', 'write'] as const

const apiKeyFields = {
  id: Id,
  name: Type.String(),
  scopes: Type.Array(StringEnum(API_KEY_SCOPES), {
    description:
      '["read"]: GET only (any other method is a 403 insufficient_scope); ["read", "write"]: everything its owner may do',
  }),
  key_prefix: Type.String({
    description: 'The first characters of the key, to tell keys apart',
    examples: ['crm_Xq3v9b'],
  }),
  user_id: Type.Integer({ description: 'The owner: the key acts with this user’s role' }),
  expires_at: NullableDateTime,
  last_used_at: Nullable(DateTime),
  created_at: DateTime,
}

export const ApiKeySchema = Type.Object(apiKeyFields, {
  $id: 'ApiKey',
  additionalProperties: false,
  description: 'An API key as lists show it: never the key itself',
})

export const ApiKeyWithKeySchema = Type.Object(
  {
    ...apiKeyFields,
    key: Type.String({
      description: 'The key (crm_ + 32 random bytes, base64url), shown only in this answer: send it as a bearer token',
    }),
  },
  { $id: 'ApiKeyWithKey', additionalProperties: false },
)

export const ApiKeyCreateSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(StringEnum(API_KEY_SCOPES), {
      minItems: 1,
      maxItems: 2,
      uniqueItems: true,
      description: '["read"] or ["read", "write"]',
    }),
    expires_at: Type.Optional(
      Nullable(Type.String({ format: 'date-time', description: 'In the future; none: the key does not expire' })),
    ),
  },
  {
    $id: 'ApiKeyCreate',
    additionalProperties: false,
    examples: [{ name: 'nightly sync', scopes: ['read'], expires_at: '2027-06-30T00:00:00Z' }],
  },
)

export const ApiKeyPageSchema = Page(ref(ApiKeySchema), 'ApiKeyPage')

export const ApiKeyListQuery = Type.Object(
  {
    all: Type.Boolean({ default: false, description: 'Every user’s keys (admin only); otherwise your own' }),
    ...pageLimits(),
  },
  { additionalProperties: false },
)

export const apiKeySchemas = [ApiKeySchema, ApiKeyWithKeySchema, ApiKeyCreateSchema, ApiKeyPageSchema]
