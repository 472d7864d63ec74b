import { Type } from '@sinclair/typebox'
import { CLIENT_TYPES } from '../db/enums.js'
import {
  DateOrTimestamp,
  DateTime,
  Email,
  Id,
  Nullable,
  Page,
  pageLimits,
  pageQuery,
  ref,
  StringEnum,
  viewParameter,
} from '../http/schemas.js'

export const ClientTypeSchema = StringEnum(CLIENT_TYPES, {
  $id: 'ClientType',
  description: 'natural: a person; juridical: a company (company_name required)',
})

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength, pattern: '\\S' })
const Phone = Type.String({
  maxLength: 40,
  description:
    'Any common written form; without a country prefix it is read in DEFAULT_PHONE_REGION. Stored and returned in E.164.',
  examples: ['+584123456789'],
})

export const ClientSchema = Type.Object(
  {
    id: Id,
    client_type: ref(ClientTypeSchema),
    contact_name: Type.String(),
    company_name: Nullable(Type.String()),
    phone: Type.String({ description: 'E.164', examples: ['+584123456789'] }),
    email: Nullable(Type.String()),
    address: Nullable(Type.String()),
    created_by: Nullable(Type.Integer({ description: 'The id of the user who created it' })),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Client', additionalProperties: false },
)

export const ClientCreateSchema = Type.Object(
  {
    client_type: Type.Optional(ref(ClientTypeSchema)),
    contact_name: Text(200),
    company_name: Type.Optional(Nullable(Text(200))),
    phone: Phone,
    email: Type.Optional(Nullable(Email)),
    address: Type.Optional(Nullable(Text(500))),
  },
  {
    $id: 'ClientCreate',
    additionalProperties: false,
    examples: [
      {
        client_type: 'natural',
        contact_name: 'Juan Pérez',
        phone: '+584123456789',
        email: 'juan@example.com',
        address: 'Calle Principal 123',
      },
    ],
  },
)

export const ClientUpdateSchema = Type.Object(
  {
    client_type: Type.Optional(ref(ClientTypeSchema)),
    contact_name: Type.Optional(Text(200)),
    company_name: Type.Optional(Nullable(Text(200))),
    phone: Type.Optional(Phone),
    email: Type.Optional(Nullable(Email)),
    address: Type.Optional(Nullable(Text(500))),
  },
  { $id: 'ClientUpdate', additionalProperties: false, examples: [{ address: 'Avenida Bolívar 45' }] },
)

export const ClientPageSchema = Page(ref(ClientSchema), 'ClientPage')

export const CLIENT_SORTS = ['created_at', 'contact_name', 'updated_at'] as const

const SearchText = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '\\S',
  description: 'Part of a name, company, email or phone; case, accents and a typo do not matter',
})

export const ClientListQuery = Type.Object(
  {
    client_type: Type.Optional(ref(ClientTypeSchema)),
    q: Type.Optional(SearchText),
    created_from: Type.Optional(DateOrTimestamp),
    created_to: Type.Optional(DateOrTimestamp),
    updated_from: Type.Optional(DateOrTimestamp),
    updated_to: Type.Optional(DateOrTimestamp),
    has_email: Type.Optional(Type.Boolean({ description: 'true: clients with an email; false: without' })),
    has_open_leads: Type.Optional(
      Type.Boolean({
        description: 'true: clients with a lead in new, contacted or quoted that you may see; false: without one',
      }),
    ),
    ...viewParameter,
    ...pageQuery(CLIENT_SORTS, '-created_at'),
  },
  { additionalProperties: false },
)

export const ClientSearchQuery = Type.Object(
  {
    q: SearchText,
    ...pageLimits(20),
  },
  { additionalProperties: false },
)

export const ClientDeleteQuery = Type.Object(
  {
    cascade: Type.Boolean({
      default: false,
      description:
        'Move the client’s leads to the trash too, each with its audit row; restoring the client brings them back',
    }),
  },
  { additionalProperties: false },
)

export const PhoneParams = Type.Object(
  { phone: Type.String({ minLength: 1, maxLength: 40, description: 'Any written form; URL-encode the +' }) },
  { additionalProperties: false },
)

export const ClientMergeSchema = Type.Object(
  {
    from_id: { ...Id, description: 'The duplicate: its leads move here, then it goes to the trash' },
    dry_run: Type.Optional(Type.Boolean({ default: false, description: 'Answer what would change, write nothing' })),
  },
  { $id: 'ClientMerge', additionalProperties: false, examples: [{ from_id: 18, dry_run: true }] },
)

export const ClientMergeOutcomeSchema = Type.Object(
  {
    dry_run: Type.Boolean(),
    client: ref(ClientSchema),
    from_id: Id,
    filled: Type.Object(
      {
        company_name: Type.Optional(Type.String()),
        email: Type.Optional(Type.String()),
        address: Type.Optional(Type.String()),
      },
      { additionalProperties: false, description: 'The empty fields of the client kept, filled from the duplicate' },
    ),
    lead_ids: Type.Array(Id, { description: 'The leads that move to the client kept' }),
  },
  { $id: 'ClientMergeOutcome', additionalProperties: false },
)

export const clientSchemas = [
  ClientTypeSchema,
  ClientSchema,
  ClientCreateSchema,
  ClientUpdateSchema,
  ClientPageSchema,
  ClientMergeSchema,
  ClientMergeOutcomeSchema,
]
