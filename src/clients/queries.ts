// Reading clients: the columns, the list's filters, one client, search.
import { type ExpressionBuilder, type Selectable, sql } from 'kysely'
import type { CountryCode } from 'libphonenumber-js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { scopedAssignee } from '../auth/scope.js'
import type { Database } from '../db/database.js'
import { rangeConditions } from '../db/dates.js'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import { columnKey, type Page, type PageRequest, paginate, parseSort, type SortKey } from '../db/paginate.js'
import { clientIdsMatching, clientSearchTerms } from '../db/search.js'
import type { Clients, ClientType, DB } from '../db/types.js'
import { NotFoundError, ValidationError } from '../errors/domain.js'
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

export function phoneOrThrow(raw: string, rules: ClientRules): string {
  const result = normalizePhone(raw, rules.defaultPhoneRegion)
  if (!result.ok) throw ValidationError.field('phone', result.reason)
  return result.e164
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
      const assignee = scopedAssignee(actor)
      if (assignee !== undefined) leads = leads.where('leads.assigned_to', '=', assignee)
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
