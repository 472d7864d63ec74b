import type { UserRole } from '../db/types.js'

/** Who acts when it is not a person signed in with a token: written into events as `actor.type`. */
export interface ActorVia {
  type: 'api_key' | 'form' | 'whatsapp'
  /** The key's or the form's id; null for WhatsApp, which is no record of ours. */
  id: number | null
  name: string
}

/** Who is making a change: written into every audit row and event. */
export interface Actor {
  /** null for the system itself (the first start's admin). */
  userId: number | null
  username: string
  role: UserRole | null
  requestId: string | null
  /** Set when the change comes through an API key, a web form or WhatsApp rather than a person's token. */
  via?: ActorVia
  /** Set while an import writes: its audit rows name the import, which can then be undone. */
  importId?: number
}

export function systemActor(requestId: string | null = null): Actor {
  return { userId: null, username: 'system', role: null, requestId }
}

/**
 * Something that is no user acting on its own (a web form, WhatsApp): audit rows name it in
 * `username` as `form:<name>`, with a null `user_id`; events name it in `actor`.
 */
export function viaActor(via: ActorVia, requestId: string | null = null): Actor {
  return { userId: null, username: `${via.type}:${via.name}`, role: null, requestId, via }
}

export interface EventActor {
  type: 'user' | ActorVia['type'] | 'system'
  id: number | null
  name: string
  /** For an API key: its owner, the person who acts through it. */
  user_id?: number
}

/** The actor as events name it. */
export function eventActor(actor: Actor): EventActor {
  if (actor.via?.type === 'api_key' && actor.userId !== null) return { ...actor.via, user_id: actor.userId }
  if (actor.via) return { ...actor.via }
  if (actor.userId === null) return { type: 'system', id: null, name: actor.username }
  return { type: 'user', id: actor.userId, name: actor.username }
}
