/** True for an IANA time zone name this runtime knows (`America/Caracas`, `UTC`). */
export function isTimeZone(name: string): boolean {
  return canonicalTimeZone(name) !== undefined
}

/** The name as the runtime spells it (`america/caracas` -> `America/Caracas`), or undefined for an unknown zone. */
export function canonicalTimeZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en', { timeZone: name }).resolvedOptions().timeZone
  } catch {
    return undefined
  }
}

const LOCAL_PARTS = ['year', 'month', 'day', 'hour', 'minute', 'second'] as const

/** The wall-clock reading of `instant` in `timeZone`, as if that reading were UTC (milliseconds). */
function wallClock(instant: number, timeZone: string): number {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  })
  const parts = Object.fromEntries(format.formatToParts(instant).map((part) => [part.type, Number(part.value)]))
  const [year, month, day, hour, minute, second] = LOCAL_PARTS.map((type) => parts[type] as number)
  return Date.UTC(year as number, (month as number) - 1, day, hour, minute, second) + (instant % 1000)
}

/** The instant when the local date `y-m-d` starts in `timeZone` (the first instant of it when midnight is skipped). */
function startOfLocalDay(year: number, month: number, day: number, timeZone: string): Date {
  const midnight = Date.UTC(year, month - 1, day)
  // The offset at a first guess, then at the instant it gives: right across a change of offset.
  let instant = midnight - (wallClock(midnight, timeZone) - midnight)
  instant = midnight - (wallClock(instant, timeZone) - instant)
  // Midnight skipped by a change of offset: the day starts at the first instant that reads this date.
  if (wallClock(instant, timeZone) < midnight) instant += midnight - wallClock(instant, timeZone)
  return new Date(instant)
}

/** The local day of `now` in `timeZone` as the half-open range [start, end) of instants. */
export function localDay(now: Date, timeZone: string): { start: Date; end: Date } {
  const local = new Date(wallClock(now.getTime(), timeZone))
  const [year, month, day] = [local.getUTCFullYear(), local.getUTCMonth() + 1, local.getUTCDate()]
  return { start: startOfLocalDay(year, month, day, timeZone), end: startOfLocalDay(year, month, day + 1, timeZone) }
}
