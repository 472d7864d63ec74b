import { normalizePhone } from '../phone.js'

/**
 * The E.164 numbers one WhatsApp sender may be stored under, the form to create a client with
 * first. WhatsApp's `wa_id` is the number without `+`, but for a few countries it may name the same
 * mobile line in two ways: Brazil with or without the ninth digit that mobile numbers gained in
 * 2012–2016 (older accounts keep the 8-digit form), Mexico with or without the `1` that mobile
 * numbers carried until 2019, and Argentina with or without the `9` of mobile numbers dialled from
 * abroad. A client stored in any of these forms is the same person.
 */
export function senderPhoneCandidates(waId: string): string[] {
  const digits = waId.replace(/\D/g, '')
  const variants = [digits, ...lineVariants(digits)].map((number) => `+${number}`)
  const unique = [...new Set(variants)]
  // A new client gets the form libphonenumber accepts (today's form of the line), else the wa_id as it came.
  const valid = unique.filter((phone) => {
    const result = normalizePhone(phone, 'US')
    return result.ok && result.e164 === phone
  })
  return [...new Set([...valid, ...unique])]
}

function lineVariants(digits: string): string[] {
  // Brazil: 55, a two-digit area code, then a mobile number of 9 + 8 digits, or the same 8 digits alone.
  const brazil = digits.match(/^55(\d{2})(9?)([6-9]\d{7})$/)
  if (brazil) {
    const [, area, nine, line] = brazil
    return [nine ? `55${area}${line}` : `55${area}9${line}`]
  }
  // Mexico: 52 then ten digits, mobile numbers once written 521 then the same ten digits.
  const mexico = digits.match(/^52(1?)(\d{10})$/)
  if (mexico) {
    const [, one, national] = mexico
    return [one ? `52${national}` : `521${national}`]
  }
  // Argentina: 54 then ten digits, mobile numbers written 549 then the same ten digits.
  const argentina = digits.match(/^54(9?)(\d{10})$/)
  if (argentina) {
    const [, nine, national] = argentina
    return [nine ? `54${national}` : `549${national}`]
  }
  return []
}
