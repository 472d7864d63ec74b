import { sql, type Transaction } from 'kysely'
import { stringify } from 'safe-stable-stringify'
import { writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'
import { isTimeZone } from '../time-zone.js'
import { type BusinessCalendar, durationSeconds, type OpenHours, WEEKDAYS, type Weekday } from './business-time.js'

export type StaleAfter = Record<'new' | 'contacted' | 'quoted', string | null>

export type StageProbability = Record<'new' | 'contacted' | 'quoted', number>

export interface PipelineSettings extends BusinessCalendar {
  stale_after: StaleAfter
  response_target: string
  lost_reasons: string[]
  stage_probability: StageProbability
}

export interface PipelineSettingsUpdate {
  stale_after?: StaleAfter
  business_hours?: Record<Weekday, OpenHours[]>
  holidays?: string[]
  response_target?: string
  /** null or left out: DEFAULT_TIME_ZONE. */
  time_zone?: string | null
  lost_reasons?: string[]
  stage_probability?: StageProbability
}

const SETTINGS_ID = 1
const WORKDAY: OpenHours[] = [{ from: '09:00', to: '18:00' }]

/** The settings before any PUT, and what a field left out of a PUT returns to (time_zone aside). */
export const DEFAULT_PIPELINE_SETTINGS: Omit<PipelineSettings, 'time_zone'> = {
  stale_after: { new: null, contacted: null, quoted: null },
  business_hours: {
    monday: WORKDAY,
    tuesday: WORKDAY,
    wednesday: WORKDAY,
    thursday: WORKDAY,
    friday: WORKDAY,
    saturday: [],
    sunday: [],
  },
  holidays: [],
  response_target: 'PT1H',
  lost_reasons: ['price', 'competitor', 'no_response', 'not_interested', 'other'],
  stage_probability: { new: 0.1, contacted: 0.3, quoted: 0.6 },
}

// The zone of settings that name none: DEFAULT_TIME_ZONE, given once at start (buildApp); the
// settings are read deep inside writes (a first response) that have no configuration at hand.
let defaultTimeZone = 'UTC'

export function setDefaultTimeZone(zone: string): void {
  defaultTimeZone = zone
}

type Row = {
  stale_after: unknown
  business_hours: unknown
  holidays: unknown
  response_target: string
  time_zone: string | null
  lost_reasons: unknown
  stage_probability: unknown
}

const settingsOf = (row: Row): PipelineSettings => ({
  stale_after: row.stale_after as StaleAfter,
  business_hours: row.business_hours as Record<Weekday, OpenHours[]>,
  holidays: row.holidays as string[],
  response_target: row.response_target,
  time_zone: row.time_zone ?? defaultTimeZone,
  lost_reasons: row.lost_reasons as string[],
  stage_probability: row.stage_probability as StageProbability,
})

async function readRow(db: Database, options: { lock: boolean }): Promise<Row> {
  let query = db
    .selectFrom('pipeline_settings')
    .select([
      'stale_after',
      'business_hours',
      'holidays',
      'response_target',
      'time_zone',
      'lost_reasons',
      'stage_probability',
    ])
    .where('id', '=', SETTINGS_ID)
  if (options.lock) query = query.forUpdate()
  return query.executeTakeFirstOrThrow()
}

export async function getPipelineSettings(db: Database): Promise<PipelineSettings> {
  return settingsOf(await readRow(db, { lock: false }))
}

/**
 * Plain unsigned designators, as PostgreSQL reads them too: stale leads compare stays with
 * `stale_after ->> status)::interval` in SQL, where a value only Luxon reads would fail every list.
 */
const PLAIN_DURATION =
  /^P(?=\d|T\d)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$/

const isPlainDuration = (text: string) => PLAIN_DURATION.test(text) && durationSeconds(text) !== null

const minutesOf = (time: string) => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5))

/** The checks the schema cannot make (it checks the dates): durations that parse, hours in order, a known zone. */
function assertValid(input: PipelineSettingsUpdate): void {
  for (const [status, duration] of Object.entries(input.stale_after ?? {})) {
    if (duration !== null && !isPlainDuration(duration)) {
      throw ValidationError.field(`stale_after.${status}`, 'must be a positive ISO 8601 duration (PT2H, P3D)')
    }
  }
  // The same form as stale_after, so one rule holds for every duration of the settings.
  if (input.response_target !== undefined && !isPlainDuration(input.response_target)) {
    throw ValidationError.field('response_target', 'must be a positive ISO 8601 duration (PT1H)')
  }
  for (const day of WEEKDAYS) {
    const intervals = input.business_hours?.[day] ?? []
    intervals.forEach((hours, index) => {
      const field = `business_hours.${day}.${index}`
      if (minutesOf(hours.to) <= minutesOf(hours.from)) throw ValidationError.field(field, 'to must be after from')
      const previous = intervals[index - 1]
      if (previous && minutesOf(hours.from) < minutesOf(previous.to)) {
        throw ValidationError.field(field, 'overlaps or comes before the previous interval: list them in order')
      }
    })
  }
  if (input.time_zone != null && !isTimeZone(input.time_zone)) {
    throw ValidationError.field('time_zone', `${input.time_zone} is not a known IANA time zone`)
  }
}

/** Replaces the settings (a field left out returns to its default), with an audit row of what changed. */
export async function replacePipelineSettings(
  trx: Transaction<DB>,
  actor: Actor,
  input: PipelineSettingsUpdate,
): Promise<PipelineSettings> {
  assertValid(input)
  const current = await readRow(trx, { lock: true })
  const stored = {
    stale_after: input.stale_after ?? DEFAULT_PIPELINE_SETTINGS.stale_after,
    business_hours: input.business_hours ?? DEFAULT_PIPELINE_SETTINGS.business_hours,
    holidays: input.holidays ?? DEFAULT_PIPELINE_SETTINGS.holidays,
    response_target: input.response_target ?? DEFAULT_PIPELINE_SETTINGS.response_target,
    time_zone: input.time_zone ?? null,
    lost_reasons: input.lost_reasons ?? DEFAULT_PIPELINE_SETTINGS.lost_reasons,
    stage_probability: input.stage_probability ?? DEFAULT_PIPELINE_SETTINGS.stage_probability,
  }
  const changed = (Object.keys(stored) as Array<keyof typeof stored>).filter(
    // jsonb keeps keys in its own order: compare with keys sorted.
    (field) => stringify(current[field]) !== stringify(stored[field]),
  )
  const after = settingsOf(stored)
  if (changed.length === 0) return after
  await trx
    .updateTable('pipeline_settings')
    .set({
      stale_after: JSON.stringify(stored.stale_after),
      business_hours: JSON.stringify(stored.business_hours),
      holidays: JSON.stringify(stored.holidays),
      response_target: stored.response_target,
      time_zone: stored.time_zone,
      lost_reasons: JSON.stringify(stored.lost_reasons),
      stage_probability: JSON.stringify(stored.stage_probability),
      updated_at: sql`now()`,
    })
    .where('id', '=', SETTINGS_ID)
    .execute()
  await writeAudit(trx, actor, {
    table: 'pipeline_settings',
    recordId: SETTINGS_ID,
    action: 'update',
    oldValues: Object.fromEntries(changed.map((field) => [field, current[field]])),
    newValues: Object.fromEntries(changed.map((field) => [field, stored[field]])),
  })
  return after
}
