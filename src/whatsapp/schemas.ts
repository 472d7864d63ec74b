import { type Static, Type } from '@sinclair/typebox'

// Meta adds fields over time: what is not read here is let through, not refused.
const open = { additionalProperties: true }
const MAX_ITEMS = 1000

const MetaErrorSchema = Type.Object(
  {
    code: Type.Integer(),
    title: Type.Optional(Type.String()),
    message: Type.Optional(Type.String()),
    error_data: Type.Optional(Type.Object({ details: Type.Optional(Type.String()) }, open)),
  },
  open,
)

const InboundMessageSchema = Type.Object(
  {
    from: Type.String({ pattern: '^\\+?[1-9][0-9]{5,14}$' }),
    id: Type.String({ minLength: 1, maxLength: 256 }),
    timestamp: Type.String({ pattern: '^[0-9]{1,12}$' }),
    type: Type.String({ minLength: 1, maxLength: 64 }),
    text: Type.Optional(Type.Object({ body: Type.String() }, open)),
  },
  open,
)

const StatusSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 256 }),
    status: Type.String({ minLength: 1, maxLength: 64 }),
    timestamp: Type.String({ pattern: '^[0-9]{1,12}$' }),
    recipient_id: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(MetaErrorSchema, { maxItems: 100 })),
  },
  open,
)

const ContactSchema = Type.Object(
  {
    wa_id: Type.String(),
    profile: Type.Optional(Type.Object({ name: Type.Optional(Type.String()) }, open)),
  },
  open,
)

/** The body of a webhook POST from the WhatsApp Business Platform (the `messages` field). */
export const WhatsAppNotificationSchema = Type.Object(
  {
    object: Type.String(),
    entry: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          changes: Type.Array(
            Type.Object(
              {
                field: Type.String(),
                value: Type.Object(
                  {
                    contacts: Type.Optional(Type.Array(ContactSchema, { maxItems: MAX_ITEMS })),
                    messages: Type.Optional(Type.Array(InboundMessageSchema, { maxItems: MAX_ITEMS })),
                    statuses: Type.Optional(Type.Array(StatusSchema, { maxItems: MAX_ITEMS })),
                  },
                  open,
                ),
              },
              open,
            ),
            { maxItems: MAX_ITEMS },
          ),
        },
        open,
      ),
      { maxItems: MAX_ITEMS },
    ),
  },
  { ...open, $id: 'WhatsAppNotification', description: "A webhook notification as Meta's Cloud API sends it" },
)

export type WhatsAppNotification = Static<typeof WhatsAppNotificationSchema>
export type WhatsAppMessage = Static<typeof InboundMessageSchema> & Record<string, unknown>
export type MessageStatus = Static<typeof StatusSchema>
export type Contact = Static<typeof ContactSchema>

export const VerificationQuery = Type.Object(
  {
    'hub.mode': Type.Optional(Type.String({ maxLength: 64 })),
    'hub.verify_token': Type.Optional(Type.String({ maxLength: 512 })),
    'hub.challenge': Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
)

export const WhatsAppSendSchema = Type.Object(
  {
    text: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'A free-form message' })),
    template: Type.Optional(
      Type.Object(
        {
          name: Type.String({ pattern: '^[a-z0-9_]{1,512}$', description: 'An approved message template' }),
          language: Type.String({
            pattern: '^[a-z]{2,3}(_[A-Z]{2})?$',
            examples: ['es'],
            description: "The template's language code, sent to Meta as language.code",
          }),
          components: Type.Optional(
            Type.Array(Type.Object({ type: Type.String() }, open), {
              maxItems: 20,
              description: "Passed to Meta as they are: the template's header, body and button parameters",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    $id: 'WhatsAppSend',
    additionalProperties: false,
    description:
      'Either `text`, free-form within 24 hours of the lead’s last inbound WhatsApp message, or `template`, an approved template at any time.',
  },
)

export type WhatsAppSend = Static<typeof WhatsAppSendSchema>

export const WebhookResultSchema = Type.Object(
  {
    messages: Type.Integer({ description: 'Messages in the notification' }),
    stored: Type.Integer({ description: 'Of those, the ones stored now (not seen before)' }),
    refused: Type.Integer({
      description:
        'Of those, the ones no client could be made of (a sender number libphonenumber refuses): logged, not stored',
    }),
    statuses: Type.Integer({ description: 'Delivery statuses in the notification' }),
    updated: Type.Integer({ description: 'Of those, the ones that moved a message’s state forward' }),
  },
  { $id: 'WhatsAppWebhookResult', additionalProperties: false },
)

export const whatsappSchemas = [WhatsAppNotificationSchema, WhatsAppSendSchema, WebhookResultSchema]
