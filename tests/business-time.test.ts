import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type BusinessCalendar,
  businessSeconds,
  durationSeconds,
  type OpenHours,
} from '../src/pipeline/business-time.js'

const NINE_TO_SIX: OpenHours[] = [{ from: '09:00', to: '18:00' }]
const HOUR = 3600

/** Monday to Friday 09:00–18:00 in Caracas (UTC−4 all year), Christmas 2026 (a Friday) closed. */
const caracas: BusinessCalendar = {
  business_hours: {
    monday: NINE_TO_SIX,
    tuesday: NINE_TO_SIX,
    wednesday: NINE_TO_SIX,
    thursday: NINE_TO_SIX,
    friday: NINE_TO_SIX,
    saturday: [],
    sunday: [],
  },
  holidays: ['2026-12-25'],
  time_zone: 'America/Caracas',
}
/** Local Caracas time (UTC−4) as an instant. */
const ccs = (local: string) => new Date(`${local}-04:00`)

describe('businessSeconds', () => {
  it('counts the open part of a span inside one day', () => {
    // Monday 7 December 2026, 10:00 to 12:30.
    assert.equal(businessSeconds(ccs('2026-12-07T10:00'), ccs('2026-12-07T12:30'), caracas), 2.5 * HOUR)
  })

  it('counts from the opening when the span starts before it, up to the closing when it ends after it', () => {
    assert.equal(businessSeconds(ccs('2026-12-07T07:00'), ccs('2026-12-07T20:00'), caracas), 9 * HOUR)
    assert.equal(businessSeconds(ccs('2026-12-07T08:00'), ccs('2026-12-07T10:00'), caracas), 1 * HOUR)
    // After hours on Monday to 10:30 on Tuesday: only Tuesday's 09:00–10:30.
    assert.equal(businessSeconds(ccs('2026-12-07T19:00'), ccs('2026-12-08T10:30'), caracas), 1.5 * HOUR)
    // Wholly outside the hours: nothing.
    assert.equal(businessSeconds(ccs('2026-12-07T18:30'), ccs('2026-12-08T08:59'), caracas), 0)
  })

  it('skips the weekend', () => {
    // Friday 11 December 17:00 to Monday 14 December 10:00: Friday's last hour and Monday's first.
    assert.equal(businessSeconds(ccs('2026-12-11T17:00'), ccs('2026-12-14T10:00'), caracas), 2 * HOUR)
    // A whole week, Monday 00:00 to Monday 00:00: five days of nine hours.
    assert.equal(businessSeconds(ccs('2026-12-07T00:00'), ccs('2026-12-14T00:00'), caracas), 45 * HOUR)
  })

  it('skips a holiday', () => {
    // Thursday 24 December 17:00 to Monday 28 December 09:30: Christmas (Friday) and the weekend closed.
    assert.equal(businessSeconds(ccs('2026-12-24T17:00'), ccs('2026-12-28T09:30'), caracas), 1.5 * HOUR)
    const noHoliday = { ...caracas, holidays: [] }
    assert.equal(businessSeconds(ccs('2026-12-24T17:00'), ccs('2026-12-28T09:30'), noHoliday), 10.5 * HOUR)
  })

  it('adds the intervals of a split day', () => {
    const split = {
      ...caracas,
      business_hours: {
        ...caracas.business_hours,
        monday: [
          { from: '09:00', to: '13:00' },
          { from: '14:00', to: '18:00' },
        ],
      },
    }
    assert.equal(businessSeconds(ccs('2026-12-07T12:00'), ccs('2026-12-07T15:00'), split), 2 * HOUR)
  })

  it('counts the hours the clock really ran across DST in Europe/Madrid', () => {
    const madrid: BusinessCalendar = { ...caracas, holidays: [], time_zone: 'Europe/Madrid' }
    // Friday 27 March 2026 17:00 CET (UTC+1) to Monday 30 March 10:00 CEST (UTC+2): one hour each side.
    assert.equal(businessSeconds(new Date('2026-03-27T16:00:00Z'), new Date('2026-03-30T08:00:00Z'), madrid), 2 * HOUR)
    // Open 00:00–06:00 every day: on Sunday 29 March 02:00 jumps to 03:00, so that night has five hours,
    // and on Sunday 25 October 03:00 goes back to 02:00, so that night has seven.
    const nights: OpenHours[] = [{ from: '00:00', to: '06:00' }]
    const nightly: BusinessCalendar = {
      ...madrid,
      business_hours: {
        monday: nights,
        tuesday: nights,
        wednesday: nights,
        thursday: nights,
        friday: nights,
        saturday: nights,
        sunday: nights,
      },
    }
    const spring = businessSeconds(new Date('2026-03-28T23:00:00Z'), new Date('2026-03-29T04:00:00Z'), nightly)
    assert.equal(spring, 5 * HOUR)
    const autumn = businessSeconds(new Date('2026-10-24T22:00:00Z'), new Date('2026-10-25T05:00:00Z'), nightly)
    assert.equal(autumn, 7 * HOUR)
    // 24:00 closes at midnight: a whole ordinary day.
    const allDay = {
      ...nightly,
      business_hours: { ...nightly.business_hours, monday: [{ from: '00:00', to: '24:00' }] },
    }
    assert.equal(businessSeconds(new Date('2026-03-29T22:00:00Z'), new Date('2026-03-30T22:00:00Z'), allDay), 24 * HOUR)
  })

  it('is zero when the span is empty or backwards', () => {
    assert.equal(businessSeconds(ccs('2026-12-07T10:00'), ccs('2026-12-07T10:00'), caracas), 0)
    assert.equal(businessSeconds(ccs('2026-12-07T12:00'), ccs('2026-12-07T10:00'), caracas), 0)
  })

  it('counts whole seconds', () => {
    assert.equal(
      businessSeconds(new Date('2026-12-07T14:00:00.000Z'), new Date('2026-12-07T14:00:01.999Z'), caracas),
      1,
    )
  })
})

describe('durationSeconds', () => {
  it('reads positive ISO 8601 durations and refuses the rest', () => {
    assert.equal(durationSeconds('PT1H'), HOUR)
    assert.equal(durationSeconds('PT1H30M'), 1.5 * HOUR)
    assert.equal(durationSeconds('P3D'), 72 * HOUR)
    assert.equal(durationSeconds('P1W'), 168 * HOUR)
    for (const text of ['PT0S', 'P', 'PT-1H', '1 hour', 'PTH', '']) assert.equal(durationSeconds(text), null, text)
  })
})
