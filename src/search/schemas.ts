import { Type } from '@sinclair/typebox'
import { Page, pageLimits, ref, StringEnum } from '../http/schemas.js'

export const SEARCH_TYPES = ['clients', 'leads'] as const

export const SearchQuery = Type.Object(
  {
    q: Type.String({
      minLength: 1,
      maxLength: 100,
      pattern: '\\S',
      description:
        'Words to find, in any order: Spanish stems (cotización finds cotizaciones), case and accents aside, the last word also as the start of a word. A complete phone number, however written, finds its client.',
    }),
    types: Type.String({
      default: SEARCH_TYPES.join(','),
      pattern: `^(${SEARCH_TYPES.join('|')})(,(${SEARCH_TYPES.join('|')}))*$`,
      description: 'What to search, comma-separated: clients, leads',
    }),
    ...pageLimits(20),
  },
  { additionalProperties: false },
)

export const SearchHitSchema = Type.Object(
  {
    type: StringEnum(['client', 'lead'] as const),
    id: Type.Integer({ description: 'The client’s or the lead’s id' }),
    title: Type.String({ description: 'The client’s name (and company); for a lead, its client’s' }),
    snippet: Type.String({
      description: 'The matching text as HTML: the matched words in <mark>…</mark>, everything else escaped',
    }),
    score: Type.Number({ description: 'Relevance (ts_rank); higher is better' }),
  },
  { $id: 'SearchHit', additionalProperties: false },
)

export const SearchPageSchema = Page(ref(SearchHitSchema), 'SearchPage')

export const searchSchemas = [SearchHitSchema, SearchPageSchema]
