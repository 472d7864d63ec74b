import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { canonicalTimeZone, isTimeZone, localDay } from '../src/time-zone.js'

const day = (now: string, zone: string) => {
  const { start, end } = localDay(new Date(now), zone)
  return [start.toISOString(), end.toISOString()]
}

describe('time zones', () => {
  it('knows IANA names, spelled as the runtime spells them, and nothing else', () => {
    assert.equal(canonicalTimeZone('america/caracas'), 'America/Caracas')
    assert.equal(canonicalTimeZone('UTC'), 'UTC')
    assert.equal(canonicalTimeZone('Mars/Olympus_Mons'), undefined)
    assert.equal(isTimeZone('Europe/Madrid'), true)
    assert.equal(isTimeZone(''), false)
  })

  it('gives the local day around an instant, from midnight to midnight', () => {
    // 23:30 in Caracas on the 6th is still the 6th there, the 7th in UTC.
    assert.deepEqual(day('2026-12-07T03:30:00Z', 'America/Caracas'), [
      '2026-12-06T04:00:00.000Z',
      '2026-12-07T04:00:00.000Z',
    ])
    assert.deepEqual(day('2026-12-07T04:30:00Z', 'America/Caracas'), [
      '2026-12-07T04:00:00.000Z',
      '2026-12-08T04:00:00.000Z',
    ])
    assert.deepEqual(day('2026-12-07T23:30:00Z', 'Asia/Tokyo'), [
      '2026-12-07T15:00:00.000Z',
      '2026-12-08T15:00:00.000Z',
    ])
    assert.deepEqual(day('2026-12-07T12:00:00.999Z', 'UTC'), ['2026-12-07T00:00:00.000Z', '2026-12-08T00:00:00.000Z'])
    // A quarter-hour offset.
    assert.deepEqual(day('2026-12-07T12:00:00Z', 'Asia/Kathmandu'), [
      '2026-12-06T18:15:00.000Z',
      '2026-12-07T18:15:00.000Z',
    ])
  })

  it('has 23 and 25 hour days where the clocks change', () => {
    assert.deepEqual(day('2026-03-29T12:00:00Z', 'Europe/Madrid'), [
      '2026-03-28T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
    ])
    assert.deepEqual(day('2026-10-25T12:00:00Z', 'Europe/Madrid'), [
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
    ])
    assert.deepEqual(day('2026-03-08T12:00:00Z', 'America/New_York'), [
      '2026-03-08T05:00:00.000Z',
      '2026-03-09T04:00:00.000Z',
    ])
  })

  it('starts a day whose midnight the clocks skip at its first instant', () => {
    // São Paulo went from 00:00 to 01:00 on 4 November 2018: that day began at 01:00 (-02:00).
    assert.deepEqual(day('2018-11-04T12:00:00Z', 'America/Sao_Paulo'), [
      '2018-11-04T03:00:00.000Z',
      '2018-11-05T02:00:00.000Z',
    ])
  })
})
