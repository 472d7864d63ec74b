// A lead's deal value: its amount as PostgreSQL stores it, its currency, and why it was lost.
import type { Transaction } from 'kysely'
import type { DB, LeadStatus } from '../db/types.js'
import { ValidationError } from '../errors/domain.js'
import { getDefaultCurrency, isCurrency } from '../money.js'
import { getPipelineSettings } from '../pipeline/service.js'

/** "5" and "0.1" as numeric(14, 2) gives them back ("5.00", "0.10"), so an audit row says what was stored. */
export function storedAmount(amount: string): string
export function storedAmount(amount: string | null): string | null
export function storedAmount(amount: string | null | undefined): string | null | undefined
export function storedAmount(amount: string | null | undefined): string | null | undefined {
  if (amount == null) return amount
  const [whole, cents = ''] = amount.split('.')
  return `${whole}.${cents.padEnd(2, '0')}`
}

/** The currency to write: the caller's ISO 4217 code, or DEFAULT_CURRENCY at creation. */
export function checkedCurrency(code: string | undefined): string | undefined {
  if (code !== undefined && !isCurrency(code)) {
    throw ValidationError.field('currency', `${code} is not an ISO 4217 currency code`)
  }
  return code
}

export const newLeadCurrency = (code: string | undefined): string => checkedCurrency(code) ?? getDefaultCurrency()

/** One of the admins' lost reasons, or a 400 naming lost_reason that lists them. */
export async function assertKnownLostReason(trx: Transaction<DB>, reason: string): Promise<void> {
  const { lost_reasons } = await getPipelineSettings(trx)
  if (!lost_reasons.includes(reason)) {
    throw ValidationError.field(
      'lost_reason',
      `must be one of lost_reasons (GET /pipeline-settings): ${lost_reasons.join(', ')}`,
    )
  }
}

/**
 * The lost_reason of a lead that has (or takes) `status`: required and from the list for
 * discarded, refused for any other status, where it is null: a reopened lead is no longer lost,
 * and its old reason stays in its history (audit rows).
 */
export async function lostReasonFor(
  trx: Transaction<DB>,
  status: LeadStatus,
  reason: string | undefined,
): Promise<string | null> {
  if (status !== 'discarded') {
    if (reason !== undefined)
      throw ValidationError.field('lost_reason', 'is only for a lead that is or becomes discarded')
    return null
  }
  if (reason === undefined) {
    throw ValidationError.field(
      'lost_reason',
      'is required to discard a lead: one of lost_reasons in GET /pipeline-settings',
    )
  }
  await assertKnownLostReason(trx, reason)
  return reason
}
