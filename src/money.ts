import { codes } from 'currency-codes'

// ISO 4217 list one, from a package that follows its publications: the runtime's own list
// (Intl.supportedValuesOf('currency')) depends on its ICU version, and Node 20's lacks VED.
const CURRENCIES = new Set(codes())

/** True for an ISO 4217 currency code, written as the standard does (USD, not usd). */
export function isCurrency(code: string): boolean {
  return CURRENCIES.has(code)
}

/**
 * An amount as a decimal string: up to 12 digits before the point (numeric(14, 2)), at most 2
 * after, no sign, no exponent. A string, never a JSON number: a float cannot hold 0.10 exactly.
 */
export const AMOUNT_PATTERN = '^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,2})?$'

// The currency of a lead created without one: DEFAULT_CURRENCY, given once at start (buildApp);
// leads are created deep inside imports, forms and inbound messages that have no configuration at hand.
let defaultCurrency = 'USD'

export function setDefaultCurrency(code: string): void {
  defaultCurrency = code
}

export function getDefaultCurrency(): string {
  return defaultCurrency
}
