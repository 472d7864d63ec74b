import { type Expression, type QueryCreator, type RawBuilder, type SqlBool, sql } from 'kysely'
import type { DB } from './types.js'

/**
 * The threshold of the `<%` operator the trigram indexes answer: a typo in a name ("Peres" for
 * "Pérez") scores about 0.5, pg_trgm's default of 0.6 would miss it. The database holds it as its
 * default for every session (db/migrations/20261207172000_search_threshold_default.sql), so that it
 * holds behind a pooler too.
 */
export const WORD_SIMILARITY_THRESHOLD = 0.45

/** The embedded database runs as one session that reads no database defaults: it is set there instead. */
export const EMBEDDED_SESSION_SQL = `select set_config('pg_trgm.word_similarity_threshold', '${WORD_SIMILARITY_THRESHOLD}', false)`
const MIN_FUZZY_LENGTH = 4

/** A pattern for LIKE and ILIKE that matches `text` literally anywhere. */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (character) => `\\${character}`)}%`
}

// A backslash, % or _ (as a regular expression), and the replacement that puts a backslash before it.
const LIKE_SPECIAL = '([\\\\%_])'
const ESCAPED_MATCH = '\\\\\\1'

/**
 * Matches `text` anywhere in a column kept lower-case and without accents (search_text).
 * The text is normalised the same way first and escaped after: unaccent turns full-width ％ and ＿ into
 * the wildcards % and _.
 */
function normalizedContains(text: string): Expression<string> {
  return sql<string>`'%' || regexp_replace(immutable_unaccent(lower(${text.trim()})), ${LIKE_SPECIAL}, ${ESCAPED_MATCH}, 'g') || '%'`
}

export interface ClientSearchTerms {
  /** The query, lower-cased and without accents, as search_text is. */
  normalized: Expression<string>
  matches: Expression<SqlBool>
  /** The query found as it was written: a substring, or the digits of a phone number. */
  literal: Expression<SqlBool>
  /** A word like the query (a typo), for queries of four characters or more. */
  similar: Expression<SqlBool>
  /** 1 − strict word similarity (a float4): 0 when whole words match; lower is better. */
  distance: Expression<number>
}

/**
 * Matches a client's search text (names, company, email and phone digits, lower-case and without
 * accents; `client_search.search_text`, kept for live clients): as a substring, as a similar word (a
 * typo), or by the digits of a phone number however they were written. Every branch is answered by
 * the trigram index.
 */
export function clientSearchTerms(q: string, column = sql.ref('client_search.search_text')): ClientSearchTerms {
  const normalized = sql<string>`immutable_unaccent(lower(${q.trim()}))`
  const substring = sql<SqlBool>`${column} like ${normalizedContains(q)}`
  // Below four characters almost any word sharing two letters scores as similar ("cal" ~ "carmen"),
  // multiplying the matches to rank: a short query matches as a substring only.
  const similarWord =
    q.trim().length >= MIN_FUZZY_LENGTH ? sql<SqlBool>`${normalized} <% ${column}` : sql<SqlBool>`false`
  // Phone digits without a trunk prefix, so 0412-345 finds +58412345...
  const digits = q.replace(/\D/g, '').replace(/^0+/, '')
  const phoneDigits = digits.length >= 4 ? sql<SqlBool>`${column} like ${containsPattern(digits)}` : sql<SqlBool>`false`
  return {
    normalized,
    matches: sql<SqlBool>`(${substring} or ${similarWord} or ${phoneDigits})`,
    literal: sql<SqlBool>`(${substring} or ${phoneDigits})`,
    similar: similarWord,
    distance: sql<number>`${normalized} <<<-> ${column}`,
  }
}

/** The ids of the live clients whose search text matches `q`: what `q` filters lists of clients and leads by. */
export function clientIdsMatching(db: QueryCreator<DB>, q: string) {
  return db.selectFrom('client_search').select('client_search.client_id').where(clientSearchTerms(q).matches)
}

/** Words of at most this many letters and digits are matched whole, never as a prefix ("c" is not c:*). */
const MIN_PREFIX_LENGTH = 2
const MAX_QUERY_WORDS = 10
const ACUTE: Record<string, string> = { a: 'á', e: 'é', i: 'í', o: 'ó', u: 'ú' }

/**
 * Spellings of a word typed without accents, for the Spanish stemmer, which needs them to find a
 * suffix ("cotización" gives the stem "cotiz", "cotizacion" does not): the word as typed, without
 * accents, and with an acute accent on each of its last three vowels.
 */
function spellings(word: string): string[] {
  const plain = word
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFC')
  const found = new Set([word, plain])
  if (plain.length >= 4) {
    const vowels = [...plain.matchAll(/[aeiou]/g)].map((match) => match.index).slice(-3)
    for (const at of vowels) found.add(`${plain.slice(0, at)}${ACUTE[plain[at] as string]}${plain.slice(at + 1)}`)
  }
  return [...found]
}

export interface FullTextQuery {
  /** False when the text has no word to look for (only symbols): nothing can match. */
  hasWords: boolean
  /** The tsquery that `search_vector @@` matches: each word by its stems or as written, the last also as a prefix. */
  matches: Expression<unknown>
  /** Every term as a prefix, for ts_headline over the words as written (a stem is a prefix of its word). */
  highlight: Expression<unknown>
}

/** The words of what a user typed: letters and digits only, so nothing typed reaches to_tsquery's syntax. */
export function queryWords(q: string): string[] {
  return (q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, MAX_QUERY_WORDS)
}

/** The two arrays that search_query() takes: each word's spellings for the stemmer, and the words. */
export interface SearchTerms {
  stems: string[]
  plain: string[]
}

/**
 * The terms of the full-text query for these words (see
 * db/migrations/20261127160100_full_text_search.sql): all of them required, each by its stems or as
 * written; the last one as written also as the start of a word (`cotiz` finds "cotización"), unless
 * `whole`. Stems are never prefixes: "maria" is the stem "mari", and "mari…" would find "Marín".
 * `highlight`: every term as a prefix, for ts_headline over the words as written (a stem is a
 * prefix of its word).
 */
export function fullTextTerms(
  words: string[],
  options: { whole?: boolean } = {},
): { matches: SearchTerms; highlight: SearchTerms } {
  const long = (word: string) => word.length >= MIN_PREFIX_LENGTH
  const terms = (prefixedStems: boolean, prefixedWord: (index: number, word: string) => boolean) => ({
    stems: words.map((word) =>
      spellings(word)
        .map((spelling) => `${spelling}${prefixedStems && long(word) ? ':*' : ''}`)
        .join(' | '),
    ),
    plain: words.map((word, index) => `${word}${prefixedWord(index, word) ? ':*' : ''}`),
  })
  return {
    matches: terms(false, (index, word) => !options.whole && index === words.length - 1 && long(word)),
    highlight: terms(true, (_index, word) => long(word)),
  }
}

export function fullTextQuery(words: string[], options: { whole?: boolean } = {}): FullTextQuery {
  const { matches, highlight } = fullTextTerms(words, options)
  const query = (terms: SearchTerms) => sql`search_query(${terms.stems}::text[], ${terms.plain}::text[])`
  return { hasWords: words.length > 0, matches: query(matches), highlight: query(highlight) }
}

/** Text as HTML, so that ts_headline's <mark> are the only tags in a snippet. */
function htmlEscaped(text: Expression<string | null>): Expression<string> {
  return sql<string>`replace(replace(replace(replace(replace(${text}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')`
}

// Short texts are shown whole; longer ones as their best two fragments.
const SNIPPET_WHOLE_UP_TO = 200
const SNIPPET_OPTIONS = 'StartSel=<mark>, StopSel=</mark>, ShortWord=2'
const FRAGMENT_OPTIONS = `${SNIPPET_OPTIONS}, MaxFragments=2, MaxWords=20, MinWords=8, FragmentDelimiter=" … "`

/** `text` HTML-escaped, with the words that match `query` in <mark>…</mark>. */
export function snippet(text: Expression<string>, query: FullTextQuery): RawBuilder<string> {
  const escaped = htmlEscaped(text)
  return sql<string>`case when length(${text}) <= ${sql.lit(SNIPPET_WHOLE_UP_TO)}
    then ts_headline('public.es_unaccent', ${escaped}, ${query.highlight}, ${sql.lit(`${SNIPPET_OPTIONS}, HighlightAll=true`)})
    else ts_headline('public.es_unaccent', ${escaped}, ${query.highlight}, ${sql.lit(FRAGMENT_OPTIONS)}) end`
}
