// The `value` block of GET /leads/stats: deal values per currency, never summed across currencies.
import { type Expression, type RawBuilder, type SqlBool, sql } from 'kysely'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { Database } from '../db/database.js'
import { OPEN_LEAD_STATUSES } from '../db/enums.js'
import type { LeadStatus } from '../db/types.js'
import { keyConditions } from './counter-keys.js'
import { filteredLeads, type LeadFilter } from './queries.js'

type OpenStatus = (typeof OPEN_LEAD_STATUSES)[number]

/** A sum of amounts and how many leads it covers. */
export interface ValueSum {
  amount: string
  leads: number
}

export interface CurrencyValue {
  currency: string
  open: ValueSum & { by_status: Record<OpenStatus, ValueSum> }
  weighted_forecast: string
  won: ValueSum & { by_month: Array<ValueSum & { month: string }> }
  average_won: string | null
  win_rate: number | null
}

export interface LeadValueStats {
  by_currency: CurrencyValue[]
}

/** Filters the value counters can answer: any other (a creation range too) is answered by a scan. */
const VALUE_COUNTED_FILTERS = new Set<string>(['status', 'channel', 'assigned_to'])

export function valueCountersAnswer(filter: LeadFilter): boolean {
  return Object.entries(filter).every(([name, value]) => value === undefined || VALUE_COUNTED_FILTERS.has(name))
}

/**
 * From the counters a trigger keeps in the transaction of every lead change
 * (db/migrations/20261207173200_lead_value_totals.sql) when they can answer the filters, otherwise
 * from a scan of the matching leads: both give the same answer (tests/value-stats.test.ts).
 */
export async function leadValueStats(
  db: Database,
  actor: AuthenticatedActor,
  filter: LeadFilter,
): Promise<LeadValueStats> {
  return valueCountersAnswer(filter) ? valueStatsFromCounters(db, actor, filter) : valueStatsFromScan(db, actor, filter)
}

/** Rows (status, currency, leads, priced, amount) and (month, currency, leads, amount): what both sources give. */
interface Sources {
  byStatus: RawBuilder<unknown>
  wonByMonth: RawBuilder<unknown>
}

function counterConditions(actor: AuthenticatedActor, filter: LeadFilter, withStatus: boolean): Expression<SqlBool> {
  const conditions: Expression<SqlBool>[] = [sql<SqlBool>`(leads <> 0 or priced <> 0 or amount <> 0)`]
  if (withStatus && filter.status?.length) conditions.push(sql<SqlBool>`status = any(${filter.status})`)
  conditions.push(...keyConditions(actor, filter))
  return sql.join(conditions, sql` and `) as Expression<SqlBool>
}

export async function valueStatsFromCounters(
  db: Database,
  actor: AuthenticatedActor,
  filter: LeadFilter,
): Promise<LeadValueStats> {
  const closedWanted = !filter.status?.length || filter.status.includes('closed')
  return valueStats(db, {
    byStatus: sql`select status, currency, leads, priced, amount from lead_value_totals
      where ${counterConditions(actor, filter, true)}`,
    wonByMonth: closedWanted
      ? sql`select month, currency, leads, priced, amount from lead_won_month_totals
          where ${counterConditions(actor, filter, false)}`
      : sql`select null::date as month, null::text as currency, 0 as leads, 0 as priced, 0::numeric as amount where false`,
  })
}

export async function valueStatsFromScan(
  db: Database,
  actor: AuthenticatedActor,
  filter: LeadFilter,
): Promise<LeadValueStats> {
  const matching = filteredLeads(db, actor, filter).select([
    'leads.status',
    'leads.currency',
    'leads.amount',
    'leads.status_changed_at',
  ])
  return valueStats(db, {
    byStatus: sql`select status, currency, 1 as leads, (amount is not null)::int as priced,
      coalesce(amount, 0) as amount from (${matching}) as matching`,
    wonByMonth: sql`select utc_month(status_changed_at) as month, currency, 1 as leads,
      (amount is not null)::int as priced, coalesce(amount, 0) as amount
      from (${matching}) as matching where status = 'closed'`,
  })
}

interface StatusRow {
  status: LeadStatus | null
  currency: string
  leads: number
  priced: number
  amount: string
  weighted: string
}

interface MonthRow {
  month: string
  currency: string
  leads: number
  amount: string
}

const ZERO: ValueSum = { amount: '0.00', leads: 0 }

/**
 * Sums in numeric (exact at any size) and rounded to cents once at the end; the forecast weighs
 * each status's sum by its stage_probability in the same statement as the settings are read.
 */
async function valueStats(db: Database, sources: Sources): Promise<LeadValueStats> {
  // Each open status's probability, joined once (not a subquery a row of the scan).
  const probabilities = sql`(select key as status, value::numeric as probability
    from pipeline_settings, jsonb_each_text(pipeline_settings.stage_probability)) as weights`
  const open = sql.join(OPEN_LEAD_STATUSES.map((status) => sql.lit(status)))
  const [statusRows, monthRows] = await Promise.all([
    sql<StatusRow>`
      select source.status, currency, sum(leads)::int as leads, sum(priced)::int as priced,
        round(sum(amount), 2)::text as amount,
        round(coalesce(sum(amount * weights.probability) filter (where source.status in (${open})), 0), 2)::text
          as weighted
      from (${sources.byStatus}) as source
      left join ${probabilities} on weights.status = source.status::text
      group by grouping sets ((source.status, currency), (currency))
      having sum(leads) <> 0`.execute(db),
    sql<MonthRow>`
      select to_char(month, 'YYYY-MM') as month, currency, sum(leads)::int as leads,
        round(sum(amount), 2)::text as amount
      from (${sources.wonByMonth}) as source
      group by month, currency
      having sum(leads) <> 0
      order by month`.execute(db),
  ])
  const currencies = new Map<string, { statuses: Map<LeadStatus, StatusRow>; weighted: string }>()
  for (const row of statusRows.rows) {
    const entry = currencies.get(row.currency) ?? { statuses: new Map(), weighted: '0.00' }
    currencies.set(row.currency, entry)
    if (row.status === null) entry.weighted = row.weighted
    else entry.statuses.set(row.status, row)
  }
  const by_currency = [...currencies.keys()].sort().map((currency): CurrencyValue => {
    const { statuses, weighted } = currencies.get(currency) as {
      statuses: Map<LeadStatus, StatusRow>
      weighted: string
    }
    const sumOf = (status: LeadStatus): ValueSum => {
      const row = statuses.get(status)
      return row ? { amount: row.amount, leads: Number(row.leads) } : ZERO
    }
    const byStatus = Object.fromEntries(OPEN_LEAD_STATUSES.map((status) => [status, sumOf(status)])) as Record<
      OpenStatus,
      ValueSum
    >
    const openRows = OPEN_LEAD_STATUSES.flatMap((status) => statuses.get(status) ?? [])
    const won = statuses.get('closed')
    const wonLeads = Number(won?.leads ?? 0)
    const lost = Number(statuses.get('discarded')?.leads ?? 0)
    return {
      currency,
      open: {
        amount: addCents(openRows.map((row) => row.amount)),
        leads: openRows.reduce((sum, row) => sum + Number(row.leads), 0),
        by_status: byStatus,
      },
      weighted_forecast: weighted,
      won: {
        ...sumOf('closed'),
        by_month: monthRows.rows
          .filter((row) => row.currency === currency)
          .map((row) => ({ month: row.month, amount: row.amount, leads: Number(row.leads) })),
      },
      average_won: won && Number(won.priced) > 0 ? divideCents(won.amount, Number(won.priced)) : null,
      win_rate: wonLeads + lost === 0 ? null : wonLeads / (wonLeads + lost),
    }
  })
  return { by_currency }
}

/** Amounts of 2 decimals, summed exactly in integer cents. */
export function addCents(amounts: string[]): string {
  return formatCents(amounts.reduce((sum, amount) => sum + toCents(amount), 0n))
}

/** The amount divided by a count, to the nearest cent (half away from zero, as PostgreSQL's round). */
export function divideCents(amount: string, count: number): string {
  const cents = toCents(amount)
  const divisor = BigInt(count)
  return formatCents((cents * 2n + divisor) / (divisor * 2n))
}

function toCents(amount: string): bigint {
  const [whole = '0', fraction = ''] = amount.split('.')
  return BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0').slice(0, 2))
}

function formatCents(cents: bigint): string {
  const text = cents.toString().padStart(3, '0')
  return `${text.slice(0, -2)}.${text.slice(-2)}`
}
