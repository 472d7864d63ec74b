import { ROLES, SALES_NOTE } from './common.js'
import { type BenchUser, monthRange, type Samples, SEARCH_KINDS, type SearchKind } from './data.js'
import type { Role } from './floor.js'
import type { Figures, HttpRequest } from './measure.js'

// The targets for reads at this data size, and for the API ÷ floor ratio.
export const P99_TARGET_MS = { list: 30, search: 50, stats: 100, stats_month: 100, agenda: 50 } as const
export const READ_RATIO_TARGET = 0.7
export const WRITE_RATIO_TARGET = 0.6

export type Kind = 'read' | 'write' | 'login'

export interface Scenario {
  id: string
  label: string
  role: Role
  kind: Kind
  p99TargetMs?: number
  api: () => HttpRequest
  floor: () => HttpRequest
  /** Writes: the floor with every statement the API sends, beside the minimal transaction. */
  floorFull?: () => HttpRequest
  /** Reads and login: also measured with one connection, for the latency of a request alone. */
  single: boolean
}

export interface ScenarioResult {
  id: string
  scenario: string
  role: Role
  kind: Kind
  api: Figures
  floor: Figures
  floor_full?: Figures
  api_single?: Figures
  floor_single?: Figures
  ratio: number
  ratio_full?: number
  load_1m: [number, number]
  targets: {
    p99_ms?: number
    p99_met_under_load?: boolean
    p99_met_single?: boolean
    ratio_min: number
    ratio_met: boolean
  }
}

export function scenarios(samples: Samples, users: Record<Role, BenchUser>): Scenario[] {
  const randomOf = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)] as T
  const clientId = () => randomOf(samples.clientIds)
  const search = (kind: SearchKind) => () => encodeURIComponent(randomOf(samples.searches[kind]))
  const fullText = () => encodeURIComponent(randomOf(samples.fullText))
  const month = monthRange()
  const monthQuery = `created_from=${month.created_from}&created_to=${month.created_to}`
  let flipCursor = 0
  const flip = () => {
    const lead = samples.flipPool[flipCursor++ % samples.flipPool.length] as Samples['flipPool'][number]
    lead.status = lead.status === 'contacted' ? 'quoted' : 'contacted'
    return lead
  }
  let loginCursor = 0
  const nextLogin = () => {
    const user = users[ROLES[loginCursor++ % ROLES.length] as Role]
    return { username: user.username, password: user.password }
  }
  const list: Scenario[] = []
  for (const role of ROLES) {
    const read = (
      id: string,
      label: string,
      api: () => string,
      floor: () => string,
      p99TargetMs: number | undefined,
    ): Scenario => ({
      id,
      label,
      role,
      kind: 'read',
      p99TargetMs,
      api: () => ({ method: 'GET', path: api() }),
      floor: () => ({ method: 'GET', path: floor() }),
      single: true,
    })
    list.push(
      read(
        'client',
        'GET /clients/{id}',
        () => `/clients/${clientId()}`,
        () => `/${role}/clients/${clientId()}`,
        undefined,
      ),
      read(
        'list',
        'GET /leads?status=new&sort=-created_at&limit=50',
        () => '/leads?status=new&sort=-created_at&limit=50',
        () => `/${role}/leads`,
        P99_TARGET_MS.list,
      ),
      read(
        'list_deep',
        'the same, page 10,000 by cursor',
        () => `/leads?status=new&sort=-created_at&limit=50&cursor=${samples.deepCursors[role]}`,
        () => `/${role}/leads?deep=1`,
        P99_TARGET_MS.list,
      ),
      ...SEARCH_KINDS.map((kind) => {
        const q = search(kind)
        return read(
          'search',
          `GET /clients/search?q=<${kind.replaceAll('_', ' ')}>`,
          () => `/clients/search?q=${q()}`,
          () => `/${role}/clients/search?q=${q()}`,
          P99_TARGET_MS.search,
        )
      }),
      read(
        'fulltext',
        'GET /search?q=<a word of the notes, its first letters, or a surname>',
        () => `/search?q=${fullText()}`,
        () => `/${role}/search?q=${fullText()}`,
        P99_TARGET_MS.search,
      ),
      read(
        'stats',
        'GET /leads/stats',
        () => '/leads/stats',
        () => `/${role}/leads/stats`,
        P99_TARGET_MS.stats,
      ),
      read(
        'stats_month',
        'GET /leads/stats (one month)',
        () => `/leads/stats?${monthQuery}`,
        () => `/${role}/leads/stats?month=1`,
        P99_TARGET_MS.stats_month,
      ),
      read(
        'agenda',
        'GET /me/agenda',
        () => '/me/agenda',
        () => `/${role}/me/agenda`,
        P99_TARGET_MS.agenda,
      ),
    )
  }
  const newLead = () => ({ client_id: clientId(), channel: 'web', sales_notes: SALES_NOTE })
  list.push(
    {
      id: 'create',
      label: 'POST /leads',
      role: 'admin',
      kind: 'write',
      api: () => ({ method: 'POST', path: '/leads', body: newLead() }),
      floor: () => ({ method: 'POST', path: '/admin/leads', body: newLead() }),
      single: false,
    },
    {
      id: 'status',
      label: 'PATCH /leads/{id}/status',
      role: 'admin',
      kind: 'write',
      api: () => {
        const lead = flip()
        return { method: 'PATCH', path: `/leads/${lead.id}/status`, body: { status: lead.status } }
      },
      floor: () => {
        const lead = flip()
        return { method: 'PATCH', path: `/admin/leads/${lead.id}/status`, body: { status: lead.status } }
      },
      single: false,
    },
    {
      id: 'login',
      label: 'POST /auth/login (admin and sales in turn)',
      role: 'admin',
      kind: 'login',
      api: () => ({ method: 'POST', path: '/auth/login', body: nextLogin() }),
      floor: () => ({ method: 'POST', path: '/login', body: nextLogin() }),
      single: true,
    },
  )
  return list
}
