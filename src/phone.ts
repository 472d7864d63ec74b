import {
  type CountryCode,
  getCountries,
  ParseError,
  parsePhoneNumberWithError,
  validatePhoneNumberLength,
} from 'libphonenumber-js/max'

type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string }

const REASONS: Record<string, string> = {
  NOT_A_NUMBER: 'is not a phone number',
  INVALID_COUNTRY: 'has an unknown or missing country code',
  TOO_SHORT: 'is too short',
  TOO_LONG: 'is too long',
  INVALID_LENGTH: 'has a length that no number of its country has',
}

export function isCountryCode(value: string): value is CountryCode {
  return (getCountries() as string[]).includes(value)
}

/**
 * Reads a phone number in any common written form (`+58 412-345 6789`, `00584123456789`,
 * `0412 3456789`); without a country prefix it is read in `defaultRegion`. Only numbers valid
 * for their country pass (the full metadata, not just possible lengths); the result is E.164.
 */
export function normalizePhone(input: string, defaultRegion: CountryCode): PhoneResult {
  const text = input.trim()
  if (text === '') return { ok: false, reason: 'is empty' }
  if (/[a-z]/i.test(text.replace(/\s*(ext\.?|x)\s*\d+$/i, ''))) return { ok: false, reason: 'must not contain letters' }
  let parsed: ReturnType<typeof parsePhoneNumberWithError>
  try {
    parsed = parsePhoneNumberWithError(text, { defaultCountry: defaultRegion, extract: false })
  } catch (error) {
    if (error instanceof ParseError) return { ok: false, reason: REASONS[error.message] ?? 'is not a phone number' }
    throw error
  }
  if (parsed.isValid()) return { ok: true, e164: parsed.number }
  const lengthProblem = validatePhoneNumberLength(text, defaultRegion)
  if (lengthProblem) return { ok: false, reason: REASONS[lengthProblem] ?? 'has a wrong length' }
  const country = parsed.country ?? `+${parsed.countryCallingCode}`
  return { ok: false, reason: `is not a valid number for ${country} (no such number range is in use)` }
}
