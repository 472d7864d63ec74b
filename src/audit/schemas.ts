import { Type } from '@sinclair/typebox'
import { AUDIT_ACTIONS, AUDITED_TABLES } from '../db/enums.js'
import { DateTime, Id, Nullable, Page, pageLimits, ref, StringEnum } from '../http/schemas.js'

const AuditActionSchema = StringEnum(AUDIT_ACTIONS, { $id: 'AuditAction' })

const AuditLogSchema = Type.Object(
  {
    id: Type.Integer(),
    table_name: StringEnum(AUDITED_TABLES),
    record_id: Nullable(Type.Integer({ description: 'null for an export' })),
    action: ref(AuditActionSchema),
    old_values: Nullable(Type.Object({}, { additionalProperties: true })),
    new_values: Nullable(Type.Object({}, { additionalProperties: true })),
    user_id: Nullable(Type.Integer()),
    username: Nullable(Type.String()),
    api_key_id: Nullable(Type.Integer({ description: 'The API key the change was made with; null for a token' })),
    api_key_name: Nullable(Type.String({ description: 'That key’s name when the change was made' })),
    request_id: Nullable(Type.String()),
    import_id: Nullable(
      Type.Integer({ description: 'The import that wrote the change, or undid it (see the imports); null otherwise' }),
    ),
    created_at: DateTime,
  },
  { $id: 'AuditLog', additionalProperties: false },
)

export const AuditLogPageSchema = Page(ref(AuditLogSchema), 'AuditLogPage')

const pageOnly = pageLimits()

export const AuditLogQuery = Type.Object(
  {
    table_name: Type.Optional(StringEnum(AUDITED_TABLES)),
    record_id: Type.Optional(Id),
    user_id: Type.Optional(Id),
    action: Type.Optional(ref(AuditActionSchema)),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive' })),
    ...pageOnly,
  },
  { additionalProperties: false },
)

export const HistoryQuery = Type.Object(pageOnly, { additionalProperties: false })

export const auditSchemas = [AuditActionSchema, AuditLogSchema, AuditLogPageSchema]
