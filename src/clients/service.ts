import { type ExpressionBuilder, type Selectable, sql, type Transaction } from 'kysely'
import type { CountryCode } from 'libphonenumber-js'
import { diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import { isUniqueViolation } from '../db/errors.js'
import { columnKey, type Page, type PageRequest, paginate, type SortKey } from '../db/paginate.js'
import { clientSearchTerms } from '../db/search.js'
import type { Clients, ClientType, DB } from '../db/types.js'
import { ConflictError, NotFoundError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { rangeConditions } from '../http/dates.js'
import { parseSort } from '../http/schemas.js'
import { normalizePhone } from '../phone.js'
import type { CLIENT_SORTS } from './schemas.js'

export const CLIENT_COLUMNS = [
  'clients.id',
  'clients.client_type',
  'clients.contact_name',
  'clients.company_name',
  'clients.phone',
  'clients.email',
  'clients.address',
  'clients.created_by',
  'clients.created_at',
  'clients.updated_at',
] as const

export type Client = Omit<Selectable<Clients>, 'search_text' | 'search_vector'>

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

export interface ClientRules {
  defaultPhoneRegion: CountryCode
}

type ClientSort = (typeof CLIENT_SORTS)[number] | `-${(typeof CLIENT_SORTS)[number]}`

export interface ClientListFilter extends PageRequest {
  client_type?: ClientType
  q?: string
  created_from?: string
  created_to?: string
  updated_from?: string
  updated_to?: string
  has_email?: boolean
  has_open_leads?: boolean
  sort: ClientSort
}

function phoneOrThrow(raw: string, rules: ClientRules): string {
  const result = normalizePhone(raw, rules.defaultPhoneRegion)
  if (!result.ok) throw ValidationError.field('phone', result.reason)
  return result.e164
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

async function phoneTaken(trx: Transaction<DB>, phone: string): Promise<ConflictError> {
  const existing = await trx.selectFrom('clients').select('id').where('phone', '=', phone).executeTakeFirst()
  return new ConflictError('phone_taken', `A client with phone ${phone} already exists`, {
    existing_id: existing?.id ?? null,
  })
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
    .onConflict((conflict) => conflict.column('phone').doNothing())
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

/** The client's row, locked until the transaction ends; 404 when there is none. */
async function lockClient(trx: Transaction<DB>, id: number): Promise<Client> {
  const client = await trx
    .selectFrom('clients')
    .select(CLIENT_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
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
  let updated: Client
  try {
    // A savepoint, so that a taken phone leaves the transaction usable for finding its client.
    await sql`savepoint client_update`.execute(trx)
    updated = await trx
      .updateTable('clients')
      .set({ ...changes.set, updated_at: sql`now()` })
      .where('id', '=', id)
      .returning(CLIENT_COLUMNS)
      .executeTakeFirstOrThrow()
  } catch (error) {
    if (!isUniqueViolation(error, 'clients_phone_key')) throw error
    await sql`rollback to savepoint client_update`.execute(trx)
    throw await phoneTaken(trx, changes.set.phone as string)
  }
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
  count(trx: Transaction<DB>, clientId: number): Promise<number>
  /** Deletes them all, each with its audit row. */
  deleteAll(trx: Transaction<DB>, actor: Actor, clientId: number): Promise<unknown>
}

/** A client with leads is refused unless `cascade`, which deletes them too, one audit row each. */
export async function deleteClient(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  options: { cascade: boolean; dependents: ClientDependents },
): Promise<void> {
  // The row lock keeps a new lead from joining the client while it goes.
  const current = await lockClient(trx, id)
  if (options.cascade) {
    await options.dependents.deleteAll(trx, actor, id)
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
  await trx.deleteFrom('clients').where('id', '=', id).execute()
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

export async function getClient(db: Database, id: number): Promise<Client> {
  const client = await db.selectFrom('clients').select(CLIENT_COLUMNS).where('id', '=', id).executeTakeFirst()
  if (!client) throw new NotFoundError('Client')
  return client
}

export async function getClientByPhone(db: Database, rawPhone: string, rules: ClientRules): Promise<Client> {
  const phone = phoneOrThrow(rawPhone, rules)
  const client = await db.selectFrom('clients').select(CLIENT_COLUMNS).where('phone', '=', phone).executeTakeFirst()
  if (!client) throw new NotFoundError('Client')
  return client
}

const CLIENT_SORT_KEYS: Record<(typeof CLIENT_SORTS)[number], SortKey> = {
  created_at: columnKey('clients.created_at', 'timestamp'),
  contact_name: columnKey('clients.contact_name', 'text'),
  updated_at: columnKey('clients.updated_at', 'timestamp'),
}

export type ClientFilter = Omit<ClientListFilter, keyof PageRequest | 'sort'>

/**
 * The clients that match the filters of GET /clients (and its export). `has_open_leads` looks at
 * the leads the caller may see (a sales user's own), as GET /clients/{id} counts them.
 */
export function filteredClients(db: Database, actor: AuthenticatedActor, filter: ClientFilter) {
  let query = db.selectFrom('clients')
  if (filter.client_type) query = query.where('client_type', '=', filter.client_type)
  for (const name of ['created', 'updated'] as const) {
    for (const condition of rangeConditions(`clients.${name}_at`, name, filter as Record<string, unknown>)) {
      query = query.where(condition)
    }
  }
  if (filter.has_email !== undefined) {
    query = query.where('clients.email', filter.has_email ? 'is not' : 'is', null)
  }
  if (filter.has_open_leads !== undefined) {
    const openLeads = (eb: ExpressionBuilder<DB, 'clients'>) => {
      let leads = eb
        .selectFrom('leads')
        .select('leads.id')
        .whereRef('leads.client_id', '=', 'clients.id')
        .where('leads.status', 'in', OPEN_LEAD_STATUSES)
      if (actor.role === 'sales') leads = leads.where('leads.assigned_to', '=', actor.userId)
      return eb.exists(leads)
    }
    query = query.where((eb) => (filter.has_open_leads ? openLeads(eb) : eb.not(openLeads(eb))))
  }
  if (filter.q) query = query.where(clientSearchTerms(filter.q).matches)
  return query
}

export async function listClients(
  db: Database,
  actor: AuthenticatedActor,
  filter: ClientListFilter,
): Promise<Page<Client>> {
  const query = filteredClients(db, actor, filter)
  const { column, direction } = parseSort(filter.sort)
  return paginate(db, {
    matching: query,
    select: (matching) => matching.select(CLIENT_COLUMNS),
    order: { keys: [CLIENT_SORT_KEYS[column]], id: 'clients.id', direction },
    page: filter,
    filters: filter,
  })
}

/** How many of the literal matches and of the similar ones are ranked: a bounded candidate set. */
export const SEARCH_CANDIDATES = 300

/**
 * Clients matching `q`, best match first: literal matches (substring, phone digits) before
 * similar words, then by closeness. Ranking is done on a bounded candidate set (the first
 * SEARCH_CANDIDATES literal and similar matches that the trigram index yields), so a query that
 * matches half the table costs what a rare one does; `total` still counts every match (bounded).
 * Every match can be paged through, in a stable order, with GET /clients?q=.
 */
export async function searchClients(db: Database, query: PageRequest & { q: string }): Promise<Page<Client>> {
  const terms = clientSearchTerms(query.q)
  // The candidates carry their columns, so that ranking them needs no second visit to the table.
  const columns = sql.join([...CLIENT_COLUMNS, 'clients.search_text'].map((column) => sql.ref(column)))
  const candidates = sql<Client & { search_text: string }>`(
    (select ${columns} from clients where ${terms.literal} limit ${SEARCH_CANDIDATES})
    union
    (select ${columns} from clients where ${terms.similar} limit ${SEARCH_CANDIDATES}))`
  return paginate(db, {
    matching: db.selectFrom(candidates.as('clients')),
    counted: db.selectFrom('clients').where(terms.matches),
    select: (matching) => matching.select(CLIENT_COLUMNS),
    order: {
      keys: [
        { expression: sql`case when ${terms.literal} then 0 else 1 end`, type: 'integer' },
        { expression: terms.distance, type: 'real' },
      ],
      id: 'clients.id',
      direction: 'asc',
    },
    page: query,
    filters: { q: query.q },
  })
}
