import { Type } from '@sinclair/typebox'
import { Id, MAX_ID, MAX_LIMIT, Nullable, Page, ref, StringEnum, Timestamp } from '../http/schemas.js'

export const AUDIT_ACTIONS = ['create', 'update', 'delete', 'export'] as const
export const AUDITED_TABLES = ['users', 'clients', 'leads'] as const

export const AuditActionSchema = StringEnum(AUDIT_ACTIONS, { $id: 'AuditAction' })

export const AuditLogSchema = Type.Object(
  {
    id: Type.Integer(),
    table_name: StringEnum(AUDITED_TABLES),
    record_id: Nullable(Type.Integer({ description: 'null for an export' })),
    action: ref(AuditActionSchema),
    old_values: Nullable(Type.Object({}, { additionalProperties: true })),
    new_values: Nullable(Type.Object({}, { additionalProperties: true })),
    user_id: Nullable(Type.Integer()),
    username: Nullable(Type.String()),
    request_id: Nullable(Type.String()),
    created_at: Timestamp,
  },
  { $id: 'AuditLog', additionalProperties: false },
)

export const AuditLogPageSchema = Page(ref(AuditLogSchema), 'AuditLogPage')

const pageOnly = {
  limit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: MAX_ID, default: 0 }),
}

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
