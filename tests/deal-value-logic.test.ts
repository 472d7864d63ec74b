import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from '../src/config.js'
import { storedAmount } from '../src/leads/deal.js'
import { AMOUNT_PATTERN, isCurrency } from '../src/money.js'

describe('deal value logic', () => {
  it('reads DEFAULT_CURRENCY as an ISO 4217 code, USD by default', () => {
    assert.equal(loadConfig({}, { dotenv: false }).defaultCurrency, 'USD')
    assert.equal(loadConfig({ DEFAULT_CURRENCY: 'VES' }, { dotenv: false }).defaultCurrency, 'VES')
    assert.throws(
      () => loadConfig({ DEFAULT_CURRENCY: 'XYZ' }, { dotenv: false }),
      /DEFAULT_CURRENCY XYZ is not an ISO 4217 currency code/,
    )
    assert.throws(() => loadConfig({ DEFAULT_CURRENCY: 'usd' }, { dotenv: false }), /DEFAULT_CURRENCY/)
  })

  it('knows the ISO 4217 list, newer codes included, whatever the runtime', () => {
    for (const code of ['USD', 'EUR', 'VES', 'VED', 'SLE', 'ZWG']) assert.ok(isCurrency(code), code)
    for (const code of ['usd', 'XYZ', 'US', '']) assert.equal(isCurrency(code), false, code)
  })

  it('writes amounts as numeric(14, 2) gives them back', () => {
    assert.equal(storedAmount('5'), '5.00')
    assert.equal(storedAmount('0.1'), '0.10')
    assert.equal(storedAmount('1234567890.12'), '1234567890.12')
    assert.equal(storedAmount(null), null)
    assert.equal(storedAmount(undefined), undefined)
    const amount = new RegExp(AMOUNT_PATTERN)
    for (const good of ['0', '0.10', '999999999999.99']) assert.ok(amount.test(good), good)
    for (const bad of ['-1', '1.234', '1e3', '01', '.5', '5.', '1000000000000'])
      assert.equal(amount.test(bad), false, bad)
  })
})
