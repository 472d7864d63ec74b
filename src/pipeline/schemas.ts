import { Type } from '@sinclair/typebox'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import { Nullable } from '../http/schemas.js'
import { WEEKDAYS } from './business-time.js'

/** At most this many open intervals a day (a split shift needs two). */
export const MAX_INTERVALS_A_DAY = 6
export const MAX_HOLIDAYS = 366
export const MAX_LOST_REASONS = 50

const Probability = Type.Number({ minimum: 0, maximum: 1, description: 'From 0 (never won) to 1 (always)' })

const Duration = Type.String({
  minLength: 2,
  maxLength: 40,
  pattern: '^P',
  description: 'An ISO 8601 duration, positive: PT2H, P3D, P1W, PT1H30M',
})
const Time = Type.String({
  pattern: '^(([01]\\d|2[0-3]):[0-5]\\d|24:00)$',
  description: 'Local time, HH:MM (24:00 for midnight at the end of the day)',
})
const OpenHoursSchema = Type.Object(
  { from: Time, to: Time },
  { additionalProperties: false, description: 'Open from `from` until `to`, local time' },
)
const DayHours = Type.Array(OpenHoursSchema, {
  maxItems: MAX_INTERVALS_A_DAY,
  description: 'In order, not overlapping; empty: closed all day',
})

const staleAfterProperties = Object.fromEntries(
  OPEN_LEAD_STATUSES.map((status) => [status, Nullable(Duration)]),
) as Record<'new' | 'contacted' | 'quoted', ReturnType<typeof Nullable<typeof Duration>>>

const settingsProperties = {
  stale_after: Type.Object(staleAfterProperties, {
    additionalProperties: false,
    description: 'Per open status, how long a lead may sit in it without an activity before it is stale; null: never',
  }),
  business_hours: Type.Object(
    Object.fromEntries(WEEKDAYS.map((day) => [day, DayHours])) as Record<(typeof WEEKDAYS)[number], typeof DayHours>,
    { additionalProperties: false, description: 'Per weekday, the open hours in `time_zone`' },
  ),
  holidays: Type.Array(Type.String({ format: 'date' }), {
    maxItems: MAX_HOLIDAYS,
    uniqueItems: true,
    description: 'Local dates closed all day',
  }),
  response_target: { ...Duration, description: 'The first response a lead should get within (ISO 8601 duration)' },
  time_zone: Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'The IANA zone of the business hours and holidays (America/Caracas, Europe/Madrid, UTC)',
  }),
  lost_reasons: Type.Array(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }), {
    minItems: 1,
    maxItems: MAX_LOST_REASONS,
    uniqueItems: true,
    description:
      'The reasons a lead may be discarded with (lost_reason, required then, matched exactly); changing the list changes no lead',
  }),
  stage_probability: Type.Object(
    Object.fromEntries(OPEN_LEAD_STATUSES.map((status) => [status, Probability])) as Record<
      'new' | 'contacted' | 'quoted',
      typeof Probability
    >,
    {
      additionalProperties: false,
      description:
        'Per open status, the chance (0 to 1) that a lead in it is won: the weighted forecast of GET /leads/stats',
    },
  ),
}

const example = {
  stale_after: { new: 'PT2H', contacted: 'P3D', quoted: 'P7D' },
  business_hours: {
    monday: [
      { from: '09:00', to: '13:00' },
      { from: '14:00', to: '18:00' },
    ],
    tuesday: [{ from: '09:00', to: '18:00' }],
    wednesday: [{ from: '09:00', to: '18:00' }],
    thursday: [{ from: '09:00', to: '18:00' }],
    friday: [{ from: '09:00', to: '18:00' }],
    saturday: [{ from: '09:00', to: '13:00' }],
    sunday: [],
  },
  holidays: ['2026-12-25', '2027-01-01'],
  response_target: 'PT1H',
  time_zone: 'America/Caracas',
  lost_reasons: ['price', 'competitor', 'no_response', 'not_interested', 'other'],
  stage_probability: { new: 0.1, contacted: 0.3, quoted: 0.6 },
}

export const PipelineSettingsSchema = Type.Object(settingsProperties, {
  $id: 'PipelineSettings',
  additionalProperties: false,
  examples: [example],
})

export const PipelineSettingsUpdateSchema = Type.Object(
  {
    stale_after: Type.Optional(settingsProperties.stale_after),
    business_hours: Type.Optional(settingsProperties.business_hours),
    holidays: Type.Optional(settingsProperties.holidays),
    response_target: Type.Optional(settingsProperties.response_target),
    time_zone: Type.Optional(Nullable(settingsProperties.time_zone)),
    lost_reasons: Type.Optional(settingsProperties.lost_reasons),
    stage_probability: Type.Optional(settingsProperties.stage_probability),
  },
  {
    $id: 'PipelineSettingsUpdate',
    additionalProperties: false,
    description:
      'The whole settings: a field left out (or time_zone null) returns to its default (no stale leads, Monday to Friday 09:00–18:00, no holidays, PT1H, DEFAULT_TIME_ZONE, the lost reasons and stage probabilities of the example)',
    examples: [example],
  },
)

export const pipelineSchemas = [PipelineSettingsSchema, PipelineSettingsUpdateSchema]
