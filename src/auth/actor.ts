import type { UserRole } from '../db/types.js'

/** Who is making a change: written into every audit row. */
export interface Actor {
  /** null for the system itself (the first start's admin). */
  userId: number | null
  username: string
  role: UserRole | null
  requestId: string | null
}

export function systemActor(requestId: string | null = null): Actor {
  return { userId: null, username: 'system', role: null, requestId }
}
