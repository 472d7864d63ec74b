import { sql, type Transaction } from 'kysely'
import type { Actor } from '../auth/actor.js'
import { createClient } from '../clients/service.js'
import type { DB, LeadChannel } from '../db/types.js'
import { createLead } from '../leads/service.js'

export interface InboundContact {
  /** E.164 numbers the sender may be stored under; a new client gets the first. */
  phones: string[]
  contactName: string
  channel: LeadChannel
}

const OPEN_STATUSES = ['new', 'contacted', 'quoted'] as const

/**
 * The client with one of the phones (else a new one) and its most recent open lead (else a new
 * one). Concurrent calls for the same phones wait on a transaction lock, so they make one client and one lead.
 */
export async function inboundLead(
  trx: Transaction<DB>,
  actor: Actor,
  input: InboundContact,
): Promise<{ clientId: number; leadId: number }> {
  for (const phone of [...input.phones].sort()) {
    await sql`select pg_advisory_xact_lock(hashtext(${`inbound:${phone}`}))`.execute(trx)
  }
  const found = await trx
    .selectFrom('clients')
    .select('id')
    .where('phone', 'in', input.phones)
    .orderBy(sql`array_position(${sql.val(input.phones)}::text[], phone)`)
    .executeTakeFirst()
  const clientId =
    found?.id ??
    (
      await createClient(
        trx,
        actor,
        { contact_name: input.contactName, phone: input.phones[0] as string },
        { defaultPhoneRegion: 'US' },
      )
    ).id
  const open = await trx
    .selectFrom('leads')
    .select('id')
    .where('client_id', '=', clientId)
    .where('status', 'in', OPEN_STATUSES)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .executeTakeFirst()
  const leadId = open?.id ?? (await createLead(trx, actor, { client_id: clientId, channel: input.channel })).id
  return { clientId, leadId }
}
