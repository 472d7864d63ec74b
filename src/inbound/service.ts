import { sql, type Transaction } from 'kysely'
import { nextAssignee } from '../assignment/service.js'
import { activeUserId } from '../auth/active-user.js'
import type { Actor } from '../auth/actor.js'
import { createClient } from '../clients/commands.js'
import { CLIENT_COLUMNS, type Client, type ClientRules, liveClients } from '../clients/queries.js'
import type { DB, LeadChannel } from '../db/types.js'
import { createLead } from '../leads/commands.js'
import { type Lead, latestOpenLead } from '../leads/queries.js'
import type { Activity, NewActivity } from '../timeline/record.js'
import { recordActivity } from '../timeline/record.js'

export interface InboundContact {
  /** The sender's number in E.164, first the one to store, then other forms of the same line (variants). */
  phones: string[]
  name: string
  email?: string | null
  company?: string | null
}

export interface InboundMessage {
  /** The channel of a lead created for it. */
  channel: LeadChannel
  /** Who a new lead goes to, when that user is active (a form's assign_to); else the assignment rules. */
  preferredAssignee?: number | null
  /** The timeline entry (type form or whatsapp, body, meta, external_id...). */
  activity: Omit<NewActivity, 'lead_id'>
}

export interface InboundResult {
  client: Client
  lead: Lead
  /** null when the activity's external_id was already stored (a redelivery): nothing was added. */
  activity: Activity | null
  clientCreated: boolean
  leadCreated: boolean
}

/**
 * Files a contact that arrives by itself (a web form, a WhatsApp message): the client with one of
 * those phones, or a new one; its most recent open lead, or a new one assigned by the rules; and
 * the activity on that lead's timeline, all in the caller's transaction.
 *
 * Two first contacts from one new number at once give one client and one lead: each transaction
 * first takes an advisory lock per candidate number (in a fixed order, so two never wait on each
 * other), held until it commits, so the second one finds what the first created.
 */
export async function receiveInbound(
  trx: Transaction<DB>,
  actor: Actor,
  contact: InboundContact,
  message: InboundMessage,
  rules: ClientRules,
): Promise<InboundResult> {
  const phones = [...new Set(contact.phones)]
  for (const phone of [...phones].sort()) {
    await sql`select pg_advisory_xact_lock(hashtext(${`inbound:${phone}`}))`.execute(trx)
  }
  let client = await clientByPhones(trx, phones)
  const clientCreated = !client
  if (!client) {
    client = await createClient(
      trx,
      actor,
      {
        contact_name: contact.name,
        phone: phones[0] as string,
        company_name: contact.company ?? null,
        email: contact.email ?? null,
      },
      rules,
    )
  }
  let lead = await latestOpenLead(trx, client.id)
  const leadCreated = !lead
  if (!lead) {
    const assignee = (await activeUserId(trx, message.preferredAssignee)) ?? (await nextAssignee(trx))
    lead = await createLead(trx, actor, { client_id: client.id, channel: message.channel, assigned_to: assignee })
  }
  const activity = await recordActivity(trx, actor, { ...message.activity, lead_id: lead.id })
  return { client, lead, activity, clientCreated, leadCreated }
}

/** The client with the first of the numbers that one has. */
async function clientByPhones(trx: Transaction<DB>, phones: string[]): Promise<Client | undefined> {
  const found = await liveClients(trx).select(CLIENT_COLUMNS).where('phone', 'in', phones).execute()
  return phones.map((phone) => found.find((client) => client.phone === phone)).find(Boolean)
}
