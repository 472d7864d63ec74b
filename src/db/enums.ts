import type {
  ActivityDirection,
  ActivityType,
  AssignmentMode,
  AuditAction,
  AuditedTable,
  ClientType,
  DeliveryState,
  LeadChannel,
  LeadStatus,
  NotificationState,
  UserLocale,
  UserRole,
  ViewResource,
} from './types.js'

/**
 * The values of a database enum type (db/migrations), in the database's order, for schemas, seeds
 * and counts. A list that misses a value of the generated type does not compile, and a test
 * compares each list with the database's own enum_range.
 */
function allOf<T extends string>() {
  return <const L extends readonly T[]>(values: L & ([T] extends [L[number]] ? unknown : never)): L => values
}

export const USER_ROLES = allOf<UserRole>()(['admin', 'sales', 'management'])
export const CLIENT_TYPES = allOf<ClientType>()(['natural', 'juridical'])
export const LEAD_STATUSES = allOf<LeadStatus>()(['new', 'contacted', 'quoted', 'closed', 'discarded'])
/** A lead still being worked: neither closed nor discarded. */
export const OPEN_LEAD_STATUSES: readonly LeadStatus[] = ['new', 'contacted', 'quoted']
export const LEAD_CHANNELS = allOf<LeadChannel>()(['web', 'whatsapp', 'instagram', 'manual'])
export const AUDIT_ACTIONS = allOf<AuditAction>()(['create', 'update', 'delete', 'export', 'restore', 'merge', 'purge'])
export const AUDITED_TABLES = allOf<AuditedTable>()([
  'users',
  'clients',
  'leads',
  'webhooks',
  'lead_activities',
  'assignment_rules',
  'web_forms',
  'saved_views',
  'api_keys',
  'pipeline_settings',
  'tasks',
])
export const VIEW_RESOURCES = allOf<ViewResource>()(['leads', 'clients'])
export const USER_LOCALES = allOf<UserLocale>()(['es', 'en'])
export const DELIVERY_STATES = allOf<DeliveryState>()(['pending', 'delivered', 'failed'])
export const NOTIFICATION_STATES = allOf<NotificationState>()(['pending', 'sending', 'sent', 'failed', 'skipped'])
export const ACTIVITY_TYPES = allOf<ActivityType>()([
  'note',
  'call',
  'meeting',
  'email',
  'whatsapp',
  'form',
  'status_change',
  'assignment',
  'task',
])
export const ACTIVITY_DIRECTIONS = allOf<ActivityDirection>()(['inbound', 'outbound'])
export const ASSIGNMENT_MODES = allOf<AssignmentMode>()(['none', 'round_robin'])
