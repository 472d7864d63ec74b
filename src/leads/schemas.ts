import { Type } from '@sinclair/typebox'
import { ClientSchema, ClientTypeSchema } from '../clients/schemas.js'
import { LEAD_CHANNELS, LEAD_STATUSES, OPEN_LEAD_STATUSES } from '../db/enums.js'
import {
  DateOrTimestamp,
  DateTime,
  Id,
  Nullable,
  NullableDateTime,
  Page,
  pageQuery,
  ref,
  StringEnum,
  viewParameter,
} from '../http/schemas.js'
import { ERROR_MESSAGE } from '../http/validation.js'
import { AMOUNT_PATTERN } from '../money.js'

const LeadStatusSchema = StringEnum(LEAD_STATUSES, { $id: 'LeadStatus' })
const ChannelSchema = StringEnum(LEAD_CHANNELS, { $id: 'Channel' })

/** The longest admin or sales notes of a lead. */
export const MAX_NOTES = 5000
const Notes = Type.String({ maxLength: MAX_NOTES })

const AMOUNT_MESSAGE =
  'must be a decimal string of at most 2 decimals, not negative, such as "1234.50" (not a JSON number)'
/** A decimal string: a JSON number would pass through a float, which cannot hold 0.10 exactly. */
export const Amount = Type.String({
  pattern: AMOUNT_PATTERN,
  maxLength: 15,
  description:
    'A decimal string, at most 12 digits before the point and 2 after, not negative: "1234567890.12", "0.10"',
  examples: ['1500.00'],
  [ERROR_MESSAGE]: { pattern: AMOUNT_MESSAGE, type: AMOUNT_MESSAGE },
})
export const Currency = Type.String({
  pattern: '^[A-Z]{3}$',
  description: 'An ISO 4217 code in capitals (USD, EUR, VES)',
  examples: ['USD'],
})
/** The longest lost reason (each one of the list in GET /pipeline-settings). */
export const MAX_LOST_REASON = 200
const LostReason = Type.String({ minLength: 1, maxLength: MAX_LOST_REASON })
const CloseDate = Type.String({ format: 'date', description: 'A calendar date, 2027-03-31' })

const dealFields = {
  amount: Type.Optional(Nullable(Amount)),
  currency: Type.Optional({ ...Currency, description: 'An ISO 4217 code; DEFAULT_CURRENCY when left out at creation' }),
  expected_close_date: Type.Optional(Nullable(CloseDate)),
}
const lostReasonField = {
  lost_reason: Type.Optional({
    ...LostReason,
    description:
      'Required when the lead becomes discarded, one of lost_reasons in GET /pipeline-settings; refused for any other status',
  }),
}

const LeadClientSchema = Type.Object(
  {
    id: Id,
    contact_name: Type.String(),
    company_name: Nullable(Type.String()),
    phone: Type.String(),
  },
  { $id: 'LeadClient', additionalProperties: false, description: 'The lead’s client, in short' },
)

export const LeadSchema = Type.Object(
  {
    id: Id,
    client_id: Id,
    client: ref(LeadClientSchema),
    channel: ref(ChannelSchema),
    status: ref(LeadStatusSchema),
    admin_notes: Nullable(Type.String()),
    sales_notes: Nullable(Type.String()),
    assigned_to: Nullable(Type.Integer({ description: 'The id of the user who works the lead' })),
    created_by: Nullable(Type.Integer()),
    created_at: DateTime,
    updated_at: DateTime,
    status_changed_at: DateTime,
    first_response_at: {
      ...NullableDateTime,
      description:
        'The first outbound contact after creation (an outbound message; a call, email or meeting; the move out of new); null until then',
    },
    response_seconds: Nullable(
      Type.Integer({
        minimum: 0,
        description: 'first_response_at − created_at, in whole seconds; null until answered',
      }),
    ),
    response_business_seconds: Nullable(
      Type.Integer({
        minimum: 0,
        description:
          'The same span counted in open hours only (GET /pipeline-settings), with the settings in force when the lead was answered',
      }),
    ),
    next_task_at: {
      ...NullableDateTime,
      description: 'When the earliest open task of this lead is due; null when it has none (see /tasks)',
    },
    last_activity_at: {
      ...NullableDateTime,
      description:
        'When its latest activity happened (status changes and assignments aside), no later than when it was logged; null when none',
    },
    stale: Type.Boolean({
      description:
        'true when the lead has sat in its open status longer than stale_after of that status (GET /pipeline-settings) without an activity',
    }),
    amount: {
      ...Nullable(Amount),
      description: 'What the deal is worth, always with 2 decimals ("0.10"); null when not set',
    },
    currency: Currency,
    expected_close_date: Nullable(CloseDate),
    lost_reason: Nullable({
      ...LostReason,
      description: 'Why it was discarded; null for any other status (cleared when the lead is reopened)',
    }),
  },
  { $id: 'Lead', additionalProperties: false },
)

export const LeadCreateSchema = Type.Object(
  {
    client_id: Id,
    channel: ref(ChannelSchema),
    status: Type.Optional(ref(LeadStatusSchema)),
    admin_notes: Type.Optional(Nullable(Notes)),
    sales_notes: Type.Optional(Nullable(Notes)),
    assigned_to: Type.Optional(Nullable(Id)),
    ...dealFields,
    ...lostReasonField,
  },
  {
    $id: 'LeadCreate',
    additionalProperties: false,
    examples: [
      {
        client_id: 1,
        channel: 'web',
        status: 'new',
        admin_notes: 'Cliente interesado en servicios',
        sales_notes: 'Llamar el lunes',
        amount: '1500.00',
        currency: 'USD',
        expected_close_date: '2027-03-31',
      },
    ],
  },
)

export const LeadUpdateSchema = Type.Object(
  {
    client_id: Type.Optional(Id),
    channel: Type.Optional(ref(ChannelSchema)),
    admin_notes: Type.Optional(Nullable(Notes)),
    sales_notes: Type.Optional(Nullable(Notes)),
    ...dealFields,
    lost_reason: Type.Optional({
      ...LostReason,
      description:
        'Another reason for a discarded lead, one of lost_reasons in GET /pipeline-settings; refused for any other status',
    }),
  },
  {
    $id: 'LeadUpdate',
    additionalProperties: false,
    description: 'status and assigned_to change only through their own routes',
    examples: [{ sales_notes: 'Envió la cotización por correo' }],
  },
)

export const LeadStatusChangeSchema = Type.Object(
  { status: ref(LeadStatusSchema), ...lostReasonField },
  {
    $id: 'LeadStatusChange',
    additionalProperties: false,
    examples: [{ status: 'contacted' }, { status: 'discarded', lost_reason: 'price' }],
  },
)

export const LeadAssignmentSchema = Type.Object(
  { assigned_to: Nullable(Id) },
  { $id: 'LeadAssignment', additionalProperties: false, examples: [{ assigned_to: 2 }] },
)

export const LeadPageSchema = Page(ref(LeadSchema), 'LeadPage')

/** How many of a client's leads GET /clients/{id} shows. */
export const CLIENT_LEADS_SHOWN = 20

/** A client with its leads: GET /clients/{id}. */
export const ClientDetailSchema = Type.Object(
  {
    ...ClientSchema.properties,
    leads: Type.Array(ref(LeadSchema), {
      maxItems: CLIENT_LEADS_SHOWN,
      description: `The ${CLIENT_LEADS_SHOWN} most recent leads of this client that the caller may see, newest first; the rest through GET /leads?client_id=`,
    }),
    leads_total: Type.Integer({ minimum: 0, description: 'How many leads of this client the caller may see' }),
  },
  { $id: 'ClientDetail', additionalProperties: false },
)

const countsOf = (keys: readonly string[]) =>
  Type.Object(Object.fromEntries(keys.map((key) => [key, Type.Integer({ minimum: 0 })])), {
    additionalProperties: false,
  })

const responseTimeProperties = {
  median_seconds: Nullable(
    Type.Integer({ minimum: 0, description: 'The median response_seconds of the answered leads; null when none' }),
  ),
  p90_seconds: Nullable(
    Type.Integer({ minimum: 0, description: '90% of the answered leads were answered within this; null when none' }),
  ),
  within_target_ratio: Nullable(
    Type.Number({
      minimum: 0,
      maximum: 1,
      description: 'The share of the answered leads answered within response_target; null when none',
    }),
  ),
  waiting: Type.Integer({ minimum: 0, description: 'Open leads not answered yet' }),
}

const ResponseTimeSchema = Type.Object(responseTimeProperties, {
  $id: 'ResponseTime',
  additionalProperties: false,
  description: 'First responses of the matching leads (percentile_disc: each figure is a time a lead really had)',
})

const DecimalText = Type.String({ pattern: '^\\d+\\.\\d{2}$', description: 'A decimal string with 2 decimals' })
const valueSum = (description: string) =>
  Type.Object(
    { amount: DecimalText, leads: Type.Integer({ minimum: 0, description: 'How many leads (with an amount or not)' }) },
    { additionalProperties: false, description },
  )

const CurrencyValueSchema = Type.Object(
  {
    currency: Currency,
    open: Type.Object(
      {
        ...valueSum('').properties,
        by_status: Type.Object(
          Object.fromEntries(OPEN_LEAD_STATUSES.map((status) => [status, valueSum(`Leads in ${status}`)])),
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false, description: 'The open pipeline (new, contacted, quoted): the sum of amounts' },
    ),
    weighted_forecast: {
      ...DecimalText,
      description: 'The sum of amount × stage_probability of its status over the open leads, rounded to cents once',
    },
    won: Type.Object(
      {
        ...valueSum('').properties,
        by_month: Type.Array(
          Type.Object(
            {
              month: Type.String({
                pattern: '^\\d{4}-\\d{2}$',
                description: 'The UTC month they were closed, 2026-12',
              }),
              ...valueSum('').properties,
            },
            { additionalProperties: false },
          ),
          { description: 'Months with closed leads only, oldest first' },
        ),
      },
      { additionalProperties: false, description: 'Closed (won) leads' },
    ),
    average_won: Nullable({
      ...DecimalText,
      description: 'The won amount ÷ the closed leads that have an amount, to the nearest cent; null when none',
    }),
    win_rate: Nullable(
      Type.Number({ minimum: 0, maximum: 1, description: 'closed ÷ (closed + discarded) leads; null when neither' }),
    ),
  },
  { $id: 'CurrencyValue', additionalProperties: false, description: 'Deal values in one currency' },
)

export const LeadStatsSchema = Type.Object(
  {
    total: Type.Integer({ minimum: 0 }),
    by_status: countsOf(LEAD_STATUSES),
    by_channel: countsOf(LEAD_CHANNELS),
    by_assignee: Type.Array(
      Type.Object(
        {
          user_id: Nullable(Type.Integer()),
          username: Nullable(Type.String()),
          full_name: Nullable(Type.String({ description: 'The seller’s name as people read it, when set' })),
          total: Type.Integer({ minimum: 0 }),
          closed: Type.Integer({ minimum: 0 }),
          response_time: ref(ResponseTimeSchema),
        },
        { additionalProperties: false },
      ),
    ),
    conversion_rate: Type.Number({ minimum: 0, maximum: 1, description: 'closed ÷ total; 0 when there are none' }),
    per_day: Type.Array(
      Type.Object(
        {
          date: Type.String({ format: 'date' }),
          created: Type.Integer({ minimum: 0 }),
          closed: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every UTC day of the range, days without leads included' },
    ),
    response_time: Type.Object(
      {
        ...responseTimeProperties,
        by_channel: Type.Object(
          Object.fromEntries(LEAD_CHANNELS.map((channel) => [channel, ref(ResponseTimeSchema)])),
          { additionalProperties: false, description: 'The same figures for the matching leads of each channel' },
        ),
      },
      { additionalProperties: false, description: 'How fast the matching leads got their first response' },
    ),
    value: Type.Object(
      {
        by_currency: Type.Array(ref(CurrencyValueSchema), {
          description:
            'One entry per currency of the matching leads, by code: amounts of two currencies are never summed',
        }),
      },
      { additionalProperties: false, description: 'Deal values of the matching leads' },
    ),
  },
  { $id: 'LeadStats', additionalProperties: false },
)

export const LEAD_SORTS = [
  'created_at',
  'updated_at',
  'status_changed_at',
  'next_task_at',
  'amount',
  'expected_close_date',
] as const

const leadFilters = {
  status: Type.Optional(Type.Array(ref(LeadStatusSchema), { maxItems: 5, description: 'Repeatable' })),
  channel: Type.Optional(Type.Array(ref(ChannelSchema), { maxItems: 4, description: 'Repeatable' })),
  client_id: Type.Optional(Id),
  assigned_to: Type.Optional(
    Type.Array(Type.Union([Id, StringEnum(['me', 'none'] as const)]), {
      maxItems: 20,
      description: 'Repeatable: user ids, me, or none (unassigned); a lead matches any of them',
    }),
  ),
  client_type: Type.Optional(ref(ClientTypeSchema)),
  created_from: Type.Optional(DateOrTimestamp),
  created_to: Type.Optional(DateOrTimestamp),
  updated_from: Type.Optional(DateOrTimestamp),
  updated_to: Type.Optional(DateOrTimestamp),
  status_changed_from: Type.Optional(DateOrTimestamp),
  status_changed_to: Type.Optional(DateOrTimestamp),
  has_activity_since: Type.Optional({
    ...DateOrTimestamp,
    description: 'Leads with an activity (of any type) that happened at or after this date or time',
  }),
  q: Type.Optional(
    Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', description: 'Client name or phone, or notes' }),
  ),
  has_open_task: Type.Optional(
    Type.Boolean({ description: 'true: leads with an open task (next_task_at set); false: leads without one' }),
  ),
  next_task_from: Type.Optional(DateOrTimestamp),
  next_task_to: Type.Optional(DateOrTimestamp),
  stale: Type.Optional(
    Type.Boolean({
      description:
        'true: open leads in their status longer than its stale_after without an activity (GET /pipeline-settings); false: the others',
    }),
  ),
  awaiting_first_response: Type.Optional(
    Type.Boolean({
      description: 'true: open leads not answered yet (first_response_at null); false: the others',
    }),
  ),
  amount_min: Type.Optional({
    ...Amount,
    description: 'Leads whose amount is at least this (leads without one never match)',
  }),
  amount_max: Type.Optional({
    ...Amount,
    description: 'Leads whose amount is at most this (leads without one never match)',
  }),
  currency: Type.Optional(Type.Array(Currency, { maxItems: 20, description: 'Repeatable: ISO 4217 codes' })),
  expected_close_from: Type.Optional({ ...CloseDate, description: 'expected_close_date on or after this date' }),
  expected_close_to: Type.Optional({ ...CloseDate, description: 'expected_close_date on or before this date' }),
}

export const LeadListQuery = Type.Object(
  { ...leadFilters, ...viewParameter, ...pageQuery(LEAD_SORTS, '-created_at') },
  { additionalProperties: false },
)
/** One per_day entry a day: a range of centuries would be millions of rows in one answer. */
export const MAX_STATS_DAYS = 3660

export const LeadStatsQuery = Type.Object({ ...leadFilters, ...viewParameter }, { additionalProperties: false })

const MAX_BULK_ITEMS = 500

export const LeadBulkSchema = Type.Object(
  {
    action: StringEnum(['assign', 'status', 'delete'] as const, {
      description: 'assign (with assigned_to), status (with status) or delete (to the trash)',
    }),
    assigned_to: Type.Optional(Nullable(Id)),
    status: Type.Optional(ref(LeadStatusSchema)),
    lost_reason: Type.Optional({
      ...LostReason,
      description:
        'With status discarded (required then): the reason every lead gets, from lost_reasons in GET /pipeline-settings',
    }),
    items: Type.Optional(
      Type.Array(
        Type.Object(
          {
            id: Id,
            if_match: Type.Optional(
              Type.String({ maxLength: 4096, description: 'The lead’s ETag: 412 for this item if it changed since' }),
            ),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: MAX_BULK_ITEMS },
      ),
    ),
    ids: Type.Optional(
      Type.Array(Id, { minItems: 1, maxItems: MAX_BULK_ITEMS, description: 'Instead of items, without if_match' }),
    ),
  },
  {
    $id: 'LeadBulk',
    additionalProperties: false,
    examples: [{ action: 'assign', assigned_to: 2, items: [{ id: 41, if_match: '"etag-from-get"' }, { id: 42 }] }],
  },
)

export const LeadBulkResultSchema = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          id: Id,
          status: Type.Integer({
            description: '200, or the status the single route would answer: 400, 403, 404, 409, 412',
          }),
          error: Type.Optional(
            Type.Object(
              { code: Type.String(), detail: Type.String() },
              { additionalProperties: true, description: 'As the single route’s problem+json would say' },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { $id: 'LeadBulkResult', additionalProperties: false },
)

export const leadSchemas = [
  LeadStatusSchema,
  ChannelSchema,
  LeadClientSchema,
  LeadSchema,
  ResponseTimeSchema,
  CurrencyValueSchema,
  LeadCreateSchema,
  LeadUpdateSchema,
  LeadStatusChangeSchema,
  LeadAssignmentSchema,
  LeadPageSchema,
  ClientDetailSchema,
  LeadStatsSchema,
  LeadBulkSchema,
  LeadBulkResultSchema,
]
