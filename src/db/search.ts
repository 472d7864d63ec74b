import { type Expression, type SqlBool, sql } from 'kysely'

// A typo in a name ("Peres" for "Pérez") scores about 0.5; pg_trgm's default of 0.6 would miss it.
const WORD_SIMILARITY_THRESHOLD = 0.45
const MIN_FUZZY_LENGTH = 4

/**
 * The session setting every search needs, sent once on each new connection (src/db/database.ts), so
 * that the `<%` operator, which the GIN index answers, matches what the ranking expects.
 */
export const SEARCH_SESSION_SQL = `select set_config('pg_trgm.word_similarity_threshold', '${WORD_SIMILARITY_THRESHOLD}', false)`

/** A pattern for LIKE and ILIKE that matches `text` literally anywhere. */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (character) => `\\${character}`)}%`
}

// A backslash, % or _ (as a regular expression), and the replacement that puts a backslash before it.
const LIKE_SPECIAL = '([\\\\%_])'
const ESCAPED_MATCH = '\\\\\\1'

/**
 * Matches `text` anywhere in a column kept lower-case and without accents (search_text, notes_search).
 * The text is normalised the same way first and escaped after: unaccent turns full-width ％ and ＿ into
 * the wildcards % and _.
 */
export function normalizedContains(text: string): Expression<string> {
  return sql<string>`'%' || regexp_replace(immutable_unaccent(lower(${text.trim()})), ${LIKE_SPECIAL}, ${ESCAPED_MATCH}, 'g') || '%'`
}

export interface ClientSearchTerms {
  /** The query, lower-cased and without accents, as search_text is. */
  normalized: Expression<string>
  matches: Expression<SqlBool>
  /** Higher is better. */
  rank: Expression<number>
}

/**
 * Matches `clients.search_text` (names, company, email and phone digits, lower-case and without
 * accents): as a substring, as a similar word (a typo), or by the digits of a phone number however
 * they were written. Every branch is answered by the trigram index.
 */
export function clientSearchTerms(q: string, column = sql.ref('clients.search_text')): ClientSearchTerms {
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
    rank: sql<number>`(case when ${substring} or ${phoneDigits} then 1 else 0 end
      + strict_word_similarity(${normalized}, ${column}) + word_similarity(${normalized}, ${column}))`,
  }
}
