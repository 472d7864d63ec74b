import { Type } from '@sinclair/typebox'
import { ClientCreateSchema } from '../clients/schemas.js'
import { DateTime, Email, Id, Nullable, Page, pageLimits, ref } from '../http/schemas.js'

const Origin = Type.String({
  maxLength: 300,
  pattern: '^https?://[^/?#\\s]+$',
  description: 'scheme://host[:port], as browsers send it in Origin',
  examples: ['https://www.example.com'],
})
const Origins = Type.Array(Origin, { maxItems: 50, uniqueItems: true })
const RedirectUrl = Nullable(
  Type.String({
    maxLength: 2000,
    pattern: '^https?://\\S+$',
    description: 'Where a browser form post is sent (303) once received',
    examples: ['https://www.example.com/gracias'],
  }),
)
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })
const AssignTo = Nullable(Id)

export const WebFormSchema = Type.Object(
  {
    id: Id,
    name: Type.String(),
    key: Type.String({ description: 'Public: the page posts to /f/{key}; rotate it to retire a page' }),
    allowed_origins: Type.Array(Type.String()),
    redirect_url: Nullable(Type.String()),
    assign_to: Nullable(
      Type.Integer({ description: 'The user its new leads go to while active; else the assignment rules' }),
    ),
    created_by: Nullable(Type.Integer()),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'WebForm', additionalProperties: false },
)

export const WebFormCreateSchema = Type.Object(
  {
    name: Name,
    allowed_origins: Type.Optional(Origins),
    redirect_url: Type.Optional(RedirectUrl),
    assign_to: Type.Optional(AssignTo),
  },
  {
    $id: 'WebFormCreate',
    additionalProperties: false,
    examples: [
      {
        name: 'Contacto del sitio',
        allowed_origins: ['https://www.example.com'],
        redirect_url: 'https://www.example.com/gracias',
      },
    ],
  },
)

export const WebFormUpdateSchema = Type.Object(
  {
    name: Type.Optional(Name),
    allowed_origins: Type.Optional(Origins),
    redirect_url: Type.Optional(RedirectUrl),
    assign_to: Type.Optional(AssignTo),
  },
  { $id: 'WebFormUpdate', additionalProperties: false, examples: [{ redirect_url: null }] },
)

export const WebFormPageSchema = Page(ref(WebFormSchema), 'WebFormPage')

export const WebFormListQuery = Type.Object(pageLimits(), { additionalProperties: false })

const clientField = ClientCreateSchema.properties
export const MAX_FORM_MESSAGE = 5000

/** What a page posts: the fields of POST /clients under the names a form uses, and a message. */
export const FormSubmissionSchema = Type.Object(
  {
    name: clientField.contact_name,
    phone: clientField.phone,
    email: Type.Optional(Email),
    company: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })),
    message: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_FORM_MESSAGE })),
    website: Type.Optional(
      Type.String({
        maxLength: 2000,
        description: 'A honeypot: leave it empty and hidden; filled, the post is dropped',
      }),
    ),
  },
  {
    $id: 'FormSubmission',
    additionalProperties: false,
    description: 'application/x-www-form-urlencoded (an HTML form) or JSON. Empty optional fields count as absent.',
    examples: [
      { name: 'Juan Pérez', phone: '0412 3456789', email: 'juan@example.com', message: 'Quiero una cotización' },
    ],
  },
)

export const FormReceiptSchema = Type.Object(
  { received: Type.Boolean() },
  { $id: 'FormReceipt', additionalProperties: false, description: 'Says nothing of the client or lead, on purpose' },
)

export const FormKeyParams = Type.Object(
  { key: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false },
)

export const webFormSchemas = [
  WebFormSchema,
  WebFormCreateSchema,
  WebFormUpdateSchema,
  WebFormPageSchema,
  FormSubmissionSchema,
  FormReceiptSchema,
]
