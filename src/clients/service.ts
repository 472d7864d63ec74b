import { type ExpressionBuilder, type Selectable, sql, type Transaction } from 'kysely'
import type { CountryCode } from 'libphonenumber-js'
import { diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { rangeConditions } from '../db/dates.js'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import { isUniqueViolation } from '../db/errors.js'
import { columnKey, type Page, type PageRequest, paginate, parseSort, type SortKey } from '../db/paginate.js'
import { clientIdsMatching, clientSearchTerms } from '../db/search.js'
import type { Clients, ClientType, DB } from '../db/types.js'
import { ConflictError, NotFoundError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
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

export type Client = Omit<Selectable<Clients>, 'search_text' | 'search_vector' | 'deleted_at' | 'deleted_by'>

/** Clients not in the trash: every read of clients starts here. */
export function liveClients(db: Database) {
  return db.selectFrom('clients').where('clients.deleted_at', 'is', null)
}

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
  const existing = await liveClients(trx).select('id').where('phone', '=', phone).executeTakeFirst()
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
async function markTrashed(trx: Transaction<DB>, actor: Actor, id: number): Promise<void> {
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
  let restored: Client
  try {
    await sql`savepoint client_restore`.execute(trx)
    restored = await trx
      .updateTable('clients')
      .set({ deleted_at: null, deleted_by: null })
      .where('id', '=', id)
      .returning(CLIENT_COLUMNS)
      .executeTakeFirstOrThrow()
  } catch (error) {
    // A client with the phone was created since our check.
    if (!isUniqueViolation(error, 'clients_phone_key')) throw error
    await sql`rollback to savepoint client_restore`.execute(trx)
    throw await phoneTaken(trx, trashed.phone)
  }
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

/** The fields a merge copies from the duplicate when the client kept has none. */
const MERGE_FILLED_FIELDS = ['company_name', 'email', 'address'] as const

export interface MergeOutcome {
  dry_run: boolean
  /** The client kept, as it is (or, for a dry run, would be) after the merge. */
  client: Client
  from_id: number
  /** The fields filled from the duplicate, with their new values. */
  filled: { [field in (typeof MERGE_FILLED_FIELDS)[number]]?: string }
  /** The leads that move to the client kept. */
  lead_ids: number[]
}

/**
 * Merges the duplicate `fromId` into client `id`: its live leads (and their activities, which hang
 * off them) move to `id`, `id`'s empty fields take the duplicate's values, and the duplicate goes
 * to the trash. One audit row (`merge`) for each lead and each client. `dryRun` answers the same
 * and writes nothing.
 */
export async function mergeClients(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  input: { from_id: number; dry_run?: boolean },
  dependents: ClientDependents,
): Promise<MergeOutcome> {
  const fromId = input.from_id
  if (fromId === id) throw ValidationError.field('from_id', 'must name another client than the one kept')
  // Both rows locked in id order, so that two merges of the same pair cannot deadlock.
  const rows = await liveClients(trx)
    .select(CLIENT_COLUMNS)
    .where('clients.id', 'in', [id, fromId])
    .orderBy('clients.id')
    .forUpdate()
    .execute()
  const target = rows.find((row) => row.id === id)
  const source = rows.find((row) => row.id === fromId)
  if (!target) throw new NotFoundError('Client')
  if (!source) throw ValidationError.field('from_id', `no client with id ${fromId} (or it is in the trash)`)
  const fill: MergeOutcome['filled'] = {}
  for (const field of MERGE_FILLED_FIELDS) {
    const value = source[field]
    if (target[field] === null && value !== null) fill[field] = value
  }
  const changes = diff<Client>(target, fill)
  const leadIds = await dependents.ids(trx, fromId)
  const outcome = { from_id: fromId, filled: fill, lead_ids: leadIds }
  if (input.dry_run) return { dry_run: true, client: { ...target, ...changes?.set }, ...outcome }

  await dependents.moveAll(trx, actor, fromId, id)
  await markTrashed(trx, actor, fromId)
  const merged = changes
    ? await trx
        .updateTable('clients')
        .set({ ...changes.set, updated_at: sql`now()` })
        .where('id', '=', id)
        .returning(CLIENT_COLUMNS)
        .executeTakeFirstOrThrow()
    : target
  await writeAudit(trx, actor, [
    {
      table: 'clients',
      recordId: id,
      action: 'merge',
      oldValues: changes?.oldValues ?? {},
      newValues: { ...changes?.newValues, merged_from: fromId, lead_ids: leadIds },
    },
    { table: 'clients', recordId: fromId, action: 'merge', oldValues: source, newValues: { merged_into: id } },
  ])
  await writeEvent(trx, actor, [
    {
      type: 'client.merged',
      resource: 'client',
      id,
      old: changes?.oldValues ?? {},
      new: { ...changes?.newValues, merged_from: fromId, lead_ids: leadIds },
      object: merged,
    },
    { type: 'client.deleted', resource: 'client', id: fromId, old: source, new: null, object: source },
  ])
  return { dry_run: false, client: merged, ...outcome }
}

export async function getClient(db: Database, id: number): Promise<Client> {
  const client = await liveClients(db).select(CLIENT_COLUMNS).where('id', '=', id).executeTakeFirst()
  if (!client) throw new NotFoundError('Client')
  return client
}

export async function getClientByPhone(db: Database, rawPhone: string, rules: ClientRules): Promise<Client> {
  const phone = phoneOrThrow(rawPhone, rules)
  const client = await liveClients(db).select(CLIENT_COLUMNS).where('phone', '=', phone).executeTakeFirst()
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
  let query = liveClients(db)
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
        .where('leads.deleted_at', 'is', null)
      if (actor.role === 'sales') leads = leads.where('leads.assigned_to', '=', actor.userId)
      return eb.exists(leads)
    }
    query = query.where((eb) => (filter.has_open_leads ? openLeads(eb) : eb.not(openLeads(eb))))
  }
  if (filter.q) query = query.where('clients.id', 'in', clientIdsMatching(db, filter.q))
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

/** How many matches are ranked: a bounded candidate set. */
export const SEARCH_CANDIDATES = 300

/**
 * Clients matching `q`, best match first: literal matches (substring, phone digits) before
 * similar words, then by closeness. Ranking is done on a bounded candidate set (the first
 * SEARCH_CANDIDATES matches that the trigram index yields, the literal ones first: similar words
 * are only looked for when fewer clients contain the text), so a query that matches half the table
 * costs what a rare one does; `total` still counts every match (bounded), the literal ones first,
 * so that the similar ones are not looked for when those reach the bound. Every match can be paged
 * through, in a stable order, with GET /clients?q=.
 */
export async function searchClients(db: Database, query: PageRequest & { q: string }): Promise<Page<Client>> {
  const terms = clientSearchTerms(query.q)
  // Read in this order, so that the similar words' index scan and rechecks, the costly part, are
  // skipped once the literal matches are enough.
  const matches = db
    .selectFrom('client_search')
    .select(['client_search.client_id', 'client_search.search_text'])
    .where(terms.literal)
    .unionAll(
      db
        .selectFrom('client_search')
        .select(['client_search.client_id', 'client_search.search_text'])
        .where(terms.similar)
        .where((eb) => eb.not(terms.literal)),
    )
  const candidates = db.selectFrom(matches.as('matches')).selectAll().limit(SEARCH_CANDIDATES)
  const ranked = clientSearchTerms(query.q, sql.ref('matches.search_text'))
  return paginate(db, {
    matching: db.selectFrom(candidates.as('matches')).innerJoin('clients', 'clients.id', 'matches.client_id'),
    counted: db.selectFrom(matches.as('matches')),
    select: (matching) => matching.select(CLIENT_COLUMNS),
    order: {
      keys: [
        { expression: sql`case when ${ranked.literal} then 0 else 1 end`, type: 'integer' },
        { expression: ranked.distance, type: 'real' },
      ],
      id: 'clients.id',
      direction: 'asc',
    },
    page: query,
    filters: { q: query.q },
  })
}
