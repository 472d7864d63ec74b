import { type RawBuilder, type SqlBool, sql } from 'kysely'
import type { CountryCode } from 'libphonenumber-js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { visibleLeads } from '../auth/scope.js'
import { liveClients } from '../clients/queries.js'
import type { Database } from '../db/database.js'
import { MAX_COUNTED, type Page, type PageRequest, paginate } from '../db/paginate.js'
import { type FullTextQuery, fullTextQuery, queryWords, snippet } from '../db/search.js'
import { normalizePhone } from '../phone.js'
import type { SEARCH_TYPES } from './schemas.js'

export interface SearchHit {
  type: 'client' | 'lead'
  id: number
  title: string
  snippet: string
  score: number
}

export interface SearchRequest extends PageRequest {
  q: string
  types: string
}

/** How many matches of each kind are ranked: the first found, so a word in every note costs what a rare one does. */
export const SEARCH_CANDIDATES = 300

/**
 * The words to look for: a complete phone number, however written, as the digits of its E.164 form
 * (which clients' search vectors hold); anything else as typed.
 */
function searchWords(q: string, defaultPhoneRegion: CountryCode): { words: string[]; whole: boolean } {
  if (/^[\d\s+().-]+$/.test(q) && q.replace(/\D/g, '').length >= 6) {
    const phone = normalizePhone(q, defaultPhoneRegion)
    if (phone.ok) return { words: [phone.e164.slice(1)], whole: true }
  }
  return { words: queryWords(q), whole: false }
}

const matchesVector = (column: string, query: FullTextQuery) => sql<SqlBool>`${sql.ref(column)} @@ ${query.matches}`

/**
 * GET /search: one list of clients and leads ranked by ts_rank. Clients, leads by their notes and
 * leads by their activities each contribute their first SEARCH_CANDIDATES matches (sales users:
 * among their own leads; clients as GET /clients shows them, every one); `total` counts every
 * match, bounded as every list's. A hit's key for the cursor is its
 * id doubled, plus one for a lead, so clients and leads never share one.
 */
export async function search(
  db: Database,
  actor: AuthenticatedActor,
  request: SearchRequest,
  defaultPhoneRegion: CountryCode,
): Promise<Page<SearchHit>> {
  const { words, whole } = searchWords(request.q, defaultPhoneRegion)
  const query = fullTextQuery(words, { whole })
  const types = new Set(request.types.split(',') as Array<(typeof SEARCH_TYPES)[number]>)
  const branches: Array<{ rows: RawBuilder<unknown>; count: RawBuilder<unknown> }> = []
  if (types.has('clients')) {
    const matching = liveClients(db).where(matchesVector('clients.search_vector', query))
    branches.push({
      rows: sql`(${matching
        .select([
          sql<string>`'client'`.as('type'),
          'clients.id',
          sql<string>`clients.contact_name || coalesce(' · ' || clients.company_name, '')`.as('title'),
          sql<string>`concat_ws(' · ', clients.contact_name, clients.company_name, clients.email, clients.phone)`.as(
            'text',
          ),
          sql<number>`ts_rank(clients.search_vector, ${query.matches})`.as('score'),
          sql<number>`clients.id::bigint * 2`.as('hit_key'),
        ])
        .limit(SEARCH_CANDIDATES)})`,
      count: sql`(${matching.select(sql`1`.as('one'))})`,
    })
  }
  if (types.has('leads')) {
    // A lead matches by its notes or by the text of one of its activities; it is ranked, and shown,
    // by the better of the two.
    const scope = () => visibleLeads(db, actor)
    const byNotes = scope().where(matchesVector('leads.search_vector', query))
    const byActivities = scope()
      .innerJoin('lead_activities', 'lead_activities.lead_id', 'leads.id')
      .where(matchesVector('lead_activities.search_vector', query))
    const found = sql`(${byNotes
      .select([
        'leads.id as lead_id',
        sql<string>`concat_ws(' · ', leads.admin_notes, leads.sales_notes)`.as('text'),
        sql<number>`ts_rank(leads.search_vector, ${query.matches})`.as('score'),
      ])
      .limit(SEARCH_CANDIDATES)}) union all (${byActivities
      .select([
        'leads.id as lead_id',
        sql<string>`lead_activities.body`.as('text'),
        sql<number>`ts_rank(lead_activities.search_vector, ${query.matches})`.as('score'),
      ])
      .limit(SEARCH_CANDIDATES)})`
    branches.push({
      rows: sql`(select 'lead' as type, best.lead_id as id,
          clients.contact_name || coalesce(' · ' || clients.company_name, '') as title,
          best.text, best.score, best.lead_id::bigint * 2 + 1 as hit_key
        from (select distinct on (lead_id) * from (${found}) as found order by lead_id, score desc) as best
        join leads on leads.id = best.lead_id join clients on clients.id = leads.client_id)`,
      // Each side counted up to the bound, then the leads found by both once.
      count: sql`(select lead_id from ((${byNotes.select('leads.id as lead_id').limit(MAX_COUNTED + 1)}) union (${byActivities
        .select('leads.id as lead_id')
        .limit(MAX_COUNTED + 1)})) as found)`,
    })
  }
  // Only symbols or stop words' spellings aside, a query without words can match nothing: no SQL.
  if (!query.hasWords || branches.length === 0) {
    return { items: [], total: 0, total_exact: true, limit: request.limit, offset: request.offset, next_cursor: null }
  }
  const union = (parts: RawBuilder<unknown>[]) => sql.join(parts, sql` union all `)
  const candidates = sql<
    SearchHit & { text: string; hit_key: number }
  >`(${union(branches.map((branch) => branch.rows))})`
  // With a LIMIT, the planner likes to read the table in order until enough rows pass `@@`: quick for
  // a word in every note, a read of the whole table for a rare one (its estimate for a prefix is
  // coarse). Only the GIN indexes are bounded whatever the word, so the search's transaction does
  // without sequential scans.
  return db.transaction().execute(async (trx) => {
    await sql`set local enable_seqscan = off`.execute(trx)
    return paginate(trx, {
      matching: trx.selectFrom(candidates.as('hits')),
      // Aliased as the candidates are: only its rows are counted, never its columns.
      counted: trx.selectFrom(
        sql<SearchHit & { text: string; hit_key: number }>`(${union(branches.map((branch) => branch.count))})`.as(
          'hits',
        ),
      ),
      select: (matching) =>
        matching.select([
          'hits.type',
          'hits.id',
          'hits.title',
          snippet(sql.ref('hits.text'), query).as('snippet'),
          'hits.score',
        ]),
      order: { keys: [{ expression: sql.ref('hits.score'), type: 'real' }], id: 'hits.hit_key', direction: 'desc' },
      page: request,
      filters: { q: request.q, types: request.types },
    })
  })
}
