// Changing one client: create, update, trash and restore, each with its audit row and event.
import { sql, type Transaction, type UpdateObject } from 'kysely'
import { type Changes, diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import { isUniqueViolation } from '../db/errors.js'
import type { ClientType, DB } from '../db/types.js'
import { ConflictError, NotFoundError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { CLIENT_COLUMNS, type Client, type ClientRules, liveClients, phoneOrThrow } from './queries.js'

export interface ClientPatch {
  client_type?: ClientType
  contact_name?: string
  company_name?: string | null
  phone?: string
  email?: string | null
  address?: string | null
}

export interface NewClient extends ClientPatch {
  contact_name: string
  phone: string
}

/** Trims text, reads the phone into E.164 and lower-cases the email. */
export function normalize(input: ClientPatch, rules: ClientRules): ClientPatch {
  const trimmed = (value: string | null | undefined) => (typeof value === 'string' ? value.trim() : value)
  return {
    ...input,
    ...(input.contact_name !== undefined && { contact_name: input.contact_name.trim() }),
    ...(input.company_name !== undefined && { company_name: trimmed(input.company_name) }),
    ...(input.address !== undefined && { address: trimmed(input.address) }),
    ...(input.email && { email: input.email.toLowerCase() }),
    ...(input.phone !== undefined && { phone: phoneOrThrow(input.phone, rules) }),
  }
}

export function assertCompanyWhenJuridical(client: { client_type?: ClientType; company_name?: string | null }): void {
  if (client.client_type === 'juridical' && !client.company_name) {
    throw ValidationError.field('company_name', 'is required when client_type is juridical')
  }
}

/** The one answer to a phone that a live client has: 409 phone_taken naming that client. */
async function phoneTaken(trx: Transaction<DB>, phone: string): Promise<ConflictError> {
  const existing = await liveClients(trx).select('id').where('phone', '=', phone).executeTakeFirst()
  return new ConflictError('phone_taken', `A client with phone ${phone} already exists`, {
    existing_id: existing?.id ?? null,
  })
}

/**
 * Updates the client row that will be live with `phone`, under a savepoint: when another live client
 * has that phone, the unique index refuses it and the answer is phone_taken, with the transaction
 * still usable to find that client.
 */
async function updateHoldingPhone(
  trx: Transaction<DB>,
  id: number,
  phone: string,
  set: UpdateObject<DB, 'clients'>,
): Promise<Client> {
  await sql`savepoint phone_guard`.execute(trx)
  try {
    return await trx
      .updateTable('clients')
      .set(set)
      .where('id', '=', id)
      .returning(CLIENT_COLUMNS)
      .executeTakeFirstOrThrow()
  } catch (error) {
    if (!isUniqueViolation(error, 'clients_phone_key')) throw error
    await sql`rollback to savepoint phone_guard`.execute(trx)
    throw await phoneTaken(trx, phone)
  }
}

export async function createClient(
  trx: Transaction<DB>,
  actor: Actor,
  input: NewClient,
  rules: ClientRules,
): Promise<Client> {
  const values = normalize({ client_type: 'natural', ...input }, rules) as Required<ClientPatch>
  assertCompanyWhenJuridical(values)
  // ON CONFLICT DO NOTHING waits for a concurrent insert of the same phone to finish, so exactly
  // one of them creates the client and the others see it, without an aborted transaction.
  const client = await trx
    .insertInto('clients')
    .values({
      client_type: values.client_type,
      contact_name: values.contact_name,
      company_name: values.company_name ?? null,
      phone: values.phone,
      email: values.email ?? null,
      address: values.address ?? null,
      created_by: actor.userId,
    })
    .onConflict((conflict) => conflict.column('phone').where('deleted_at', 'is', null).doNothing())
    .returning(CLIENT_COLUMNS)
    .executeTakeFirst()
  if (!client) throw await phoneTaken(trx, values.phone)
  await writeAudit(trx, actor, {
    table: 'clients',
    recordId: client.id,
    action: 'create',
    oldValues: null,
    newValues: client,
  })
  await writeEvent(trx, actor, {
    type: 'client.created',
    resource: 'client',
    id: client.id,
    old: null,
    new: client,
    object: client,
  })
  return client
}

/** The live client's row, locked until the transaction ends; 404 when there is none. */
export async function lockClient(trx: Transaction<DB>, id: number): Promise<Client> {
  const client = await liveClients(trx).select(CLIENT_COLUMNS).where('id', '=', id).forUpdate().executeTakeFirst()
  if (!client) throw new NotFoundError('Client')
  return client
}

export async function updateClient(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  input: ClientPatch,
  rules: ClientRules,
): Promise<Client> {
  const current = await lockClient(trx, id)
  const changes = diff(current, normalize(input, rules))
  if (!changes) return current
  assertCompanyWhenJuridical({ ...current, ...changes.set })
  return applyClientChanges(trx, actor, current, changes)
}

/** Writes checked changes to a locked client, with their audit row and event. */
export async function applyClientChanges(
  trx: Transaction<DB>,
  actor: Actor,
  current: Client,
  changes: Changes<Client>,
): Promise<Client> {
  const id = current.id
  const updated = await updateHoldingPhone(trx, id, changes.set.phone ?? current.phone, {
    ...changes.set,
    updated_at: sql`now()`,
  })
  await writeAudit(trx, actor, {
    table: 'clients',
    recordId: id,
    action: 'update',
    oldValues: changes.oldValues,
    newValues: changes.newValues,
  })
  await writeEvent(trx, actor, {
    type: 'client.updated',
    resource: 'client',
    id,
    old: changes.oldValues,
    new: changes.newValues,
    object: updated,
  })
  return updated
}

/**
 * What refers to a client (its leads), given by the caller so that clients depend on no other
 * feature: leads refer to clients, not the other way round.
 */
export interface ClientDependents {
  /** How many live leads the client has. */
  count(trx: Transaction<DB>, clientId: number): Promise<number>
  /** The ids of its live leads. */
  ids(trx: Transaction<DB>, clientId: number): Promise<number[]>
  /** Moves them all to the trash, each with its audit row and event, marked with the client's `deleted_at`. */
  trashAll(trx: Transaction<DB>, actor: Actor, clientId: number): Promise<unknown>
  /** Brings back those trashed with the client (same `deleted_at`), each with its audit row and event. */
  restoreTrashedWith(trx: Transaction<DB>, actor: Actor, clientId: number): Promise<unknown>
  /** Moves the live ones to another client (a merge), each with its audit row and event. */
  moveAll(trx: Transaction<DB>, actor: Actor, fromId: number, toId: number): Promise<number[]>
}

/** Sets the trash mark; `now()` is the transaction's time, so leads trashed with the client share it. */
export async function markTrashed(trx: Transaction<DB>, actor: Actor, id: number): Promise<void> {
  await trx
    .updateTable('clients')
    .set({ deleted_at: sql`now()`, deleted_by: actor.userId })
    .where('id', '=', id)
    .execute()
}

/**
 * Moves a client to the trash. A client with live leads is refused unless `cascade`, which trashes
 * them with it (one audit row each); restoring the client brings those leads back.
 */
export async function trashClient(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  options: { cascade: boolean; dependents: ClientDependents },
): Promise<void> {
  // The row lock keeps a new lead from joining the client while it goes.
  const current = await lockClient(trx, id)
  if (options.cascade) {
    await options.dependents.trashAll(trx, actor, id)
  } else {
    const leadCount = await options.dependents.count(trx, id)
    if (leadCount > 0) {
      throw new ConflictError(
        'client_has_leads',
        `The client still has ${leadCount} lead(s); delete with cascade=true to delete them too`,
        { lead_count: leadCount },
      )
    }
  }
  await markTrashed(trx, actor, id)
  await writeAudit(trx, actor, {
    table: 'clients',
    recordId: id,
    action: 'delete',
    oldValues: current,
    newValues: null,
  })
  await writeEvent(trx, actor, {
    type: 'client.deleted',
    resource: 'client',
    id,
    old: current,
    new: null,
    object: current,
  })
}

/**
 * Takes a client out of the trash with the leads trashed with it. A live client that has the same
 * phone by now is a 409 phone_taken: the number belongs to one live client.
 */
export async function restoreClient(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  dependents: ClientDependents,
): Promise<Client> {
  const trashed = await trx
    .selectFrom('clients')
    .select(CLIENT_COLUMNS)
    .where('id', '=', id)
    .where('deleted_at', 'is not', null)
    .forUpdate()
    .executeTakeFirst()
  if (!trashed) throw new NotFoundError('Trashed client')
  const taken = await liveClients(trx).select('id').where('phone', '=', trashed.phone).executeTakeFirst()
  if (taken) throw await phoneTaken(trx, trashed.phone)
  // The leads first: they are found by the client's deleted_at, which the client's restore clears.
  await dependents.restoreTrashedWith(trx, actor, id)
  // A client with the phone may have been created since the check above.
  const restored = await updateHoldingPhone(trx, id, trashed.phone, { deleted_at: null, deleted_by: null })
  await writeAudit(trx, actor, {
    table: 'clients',
    recordId: id,
    action: 'restore',
    oldValues: null,
    newValues: restored,
  })
  await writeEvent(trx, actor, {
    type: 'client.restored',
    resource: 'client',
    id,
    old: null,
    new: restored,
    object: restored,
  })
  return restored
}
