import { Type } from '@sinclair/typebox'

export const NotificationSettingsSchema = Type.Object(
  {
    lead_assigned: Type.Boolean({ description: 'A lead is assigned to me by someone else' }),
    lead_status_changed: Type.Boolean({ description: 'Someone else changes the status of my lead' }),
    inbound_lead: Type.Boolean({
      description: 'A lead arrives unassigned from WhatsApp or a web form (admin and management)',
    }),
    daily_digest: Type.Boolean({
      description:
        'A morning mail at DIGEST_HOUR in my time_zone: my tasks due that day, overdue tasks, leads awaiting a first response, stale leads (off by default)',
    }),
  },
  { $id: 'NotificationSettings', additionalProperties: false },
)

export const NotificationSettingsUpdateSchema = Type.Partial(NotificationSettingsSchema, {
  $id: 'NotificationSettingsUpdate',
  additionalProperties: false,
  examples: [{ lead_status_changed: false }],
})

export const notificationSchemas = [NotificationSettingsSchema, NotificationSettingsUpdateSchema]
