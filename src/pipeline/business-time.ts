// Business-time arithmetic: pure, over the open hours of the pipeline settings, in their time zone.
import { DateTime, Duration } from 'luxon'

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const
export type Weekday = (typeof WEEKDAYS)[number]

/** An open interval of a day in local time, "09:00" to "18:00" ("24:00" ends at midnight). */
export interface OpenHours {
  from: string
  to: string
}

export interface BusinessCalendar {
  business_hours: Record<Weekday, OpenHours[]>
  /** Local dates ("2026-12-25") closed all day. */
  holidays: string[]
  /** IANA zone where the hours and the holidays are read. */
  time_zone: string
}

const minutesOf = (time: string) => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5))

/** The length of an ISO 8601 duration ("PT2H", "P3D") in seconds, or null when it is not one or not positive. */
export function durationSeconds(text: string): number | null {
  const duration = Duration.fromISO(text)
  if (!duration.isValid) return null
  const seconds = duration.as('seconds')
  return seconds > 0 ? seconds : null
}

/**
 * Seconds between `from` and `to` that fall in open hours: each local day of the span, unless a
 * holiday, adds the overlap of its intervals with the span. The intervals are turned into instants
 * in the zone on that very day, so a day that loses or gains an hour to DST counts what the clock
 * really ran (an hour that does not exist is not counted, a repeated one counts twice).
 */
export function businessSeconds(from: Date, to: Date, calendar: BusinessCalendar): number {
  const start = from.getTime()
  const end = to.getTime()
  if (!(end > start)) return 0
  const holidays = new Set(calendar.holidays)
  let total = 0
  let day = DateTime.fromMillis(start, { zone: calendar.time_zone }).startOf('day')
  while (day.toMillis() < end) {
    const date = day.toISODate() as string
    const intervals = holidays.has(date) ? [] : calendar.business_hours[WEEKDAYS[day.weekday - 1] as Weekday]
    for (const hours of intervals) {
      const open = instantOf(date, minutesOf(hours.from), calendar.time_zone)
      const close = instantOf(date, minutesOf(hours.to), calendar.time_zone)
      total += Math.max(0, Math.min(end, close) - Math.max(start, open))
    }
    day = day.plus({ days: 1 }).startOf('day')
  }
  return Math.floor(total / 1000)
}

/** The instant of a local wall-clock time on a local date; a time in a DST gap moves forward by the gap. */
function instantOf(date: string, minutes: number, zone: string): number {
  if (minutes === 24 * 60) return DateTime.fromISO(date, { zone }).plus({ days: 1 }).startOf('day').toMillis()
  const time = `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`
  return DateTime.fromISO(`${date}T${time}`, { zone }).toMillis()
}
