import { randomBytes } from 'node:crypto'
import { type Selectable, sql, type Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import type { Database } from '../db/database.js'
import { type Page, type PageRequest, paginate } from '../db/paginate.js'
import type { DB, Webhooks } from '../db/types.js'
import { NotFoundError } from '../errors/domain.js'

export const WEBHOOK_COLUMNS = [
  'id',
  'url',
  'events',
  'description',
  'is_active',
  'disabled_reason',
  'created_at',
  'updated_at',
] as const

export type Webhook = Pick<Selectable<Webhooks>, (typeof WEBHOOK_COLUMNS)[number]>

/** whsec_ + base64 of 32 random bytes, as Standard Webhooks writes secrets. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

export interface NewWebhook {
  url: string
  events: string[]
  description?: string | null
  is_active?: boolean
}

export type WebhookPatch = Partial<NewWebhook>

/** The URL is checked (SSRF) by the caller before the transaction: a DNS lookup must not hold it open. */
export async function createWebhook(
  trx: Transaction<DB>,
  actor: Actor,
  input: NewWebhook,
): Promise<Webhook & { secret: string }> {
  const webhook = await trx
    .insertInto('webhooks')
    .values({
      url: input.url,
      events: input.events,
      description: input.description ?? null,
      is_active: input.is_active ?? true,
      secret: newSecret(),
      created_by: actor.userId,
    })
    .returning([...WEBHOOK_COLUMNS, 'secret'])
    .executeTakeFirstOrThrow()
  const { secret: _secret, ...shown } = webhook
  await writeAudit(trx, actor, {
    table: 'webhooks',
    recordId: webhook.id,
    action: 'create',
    oldValues: null,
    newValues: shown,
  })
  return webhook
}

export function listWebhooks(db: Database, page: PageRequest): Promise<Page<Webhook>> {
  return paginate(db, {
    matching: db.selectFrom('webhooks'),
    select: (matching) => matching.select(WEBHOOK_COLUMNS),
    order: { keys: [], id: 'webhooks.id', direction: 'asc' },
    page,
    filters: {},
  })
}

export async function getWebhook(db: Database, id: number): Promise<Webhook> {
  const webhook = await db.selectFrom('webhooks').select(WEBHOOK_COLUMNS).where('id', '=', id).executeTakeFirst()
  if (!webhook) throw new NotFoundError('Webhook')
  return webhook
}

async function lockWebhook(trx: Transaction<DB>, id: number): Promise<Webhook> {
  const webhook = await trx
    .selectFrom('webhooks')
    .select(WEBHOOK_COLUMNS)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
  if (!webhook) throw new NotFoundError('Webhook')
  return webhook
}

export async function updateWebhook(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
  patch: WebhookPatch,
): Promise<Webhook> {
  const current = await lockWebhook(trx, id)
  const changes = diff({ ...current, events: current.events.join(',') }, {
    ...patch,
    events: patch.events?.join(','),
  } as Partial<typeof current & { events: string }>)
  if (!changes) return current
  const { events, ...set } = changes.set
  // Turned back on: its count of failures starts again.
  const reenabled = set.is_active === true && { disabled_reason: null, failed_deliveries_in_a_row: 0 }
  const updated = await trx
    .updateTable('webhooks')
    .set({
      ...set,
      ...(events !== undefined && { events: (events as string).split(',') }),
      ...reenabled,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returning(WEBHOOK_COLUMNS)
    .executeTakeFirstOrThrow()
  await writeAudit(trx, actor, {
    table: 'webhooks',
    recordId: id,
    action: 'update',
    oldValues: changes.oldValues,
    newValues: changes.newValues,
  })
  return updated
}

export async function rotateWebhookSecret(
  trx: Transaction<DB>,
  actor: Actor,
  id: number,
): Promise<Webhook & { secret: string }> {
  await lockWebhook(trx, id)
  const updated = await trx
    .updateTable('webhooks')
    .set({ secret: newSecret(), updated_at: sql`now()` })
    .where('id', '=', id)
    .returning([...WEBHOOK_COLUMNS, 'secret'])
    .executeTakeFirstOrThrow()
  // The audit row says that the secret changed, never what it is.
  await writeAudit(trx, actor, {
    table: 'webhooks',
    recordId: id,
    action: 'update',
    oldValues: { secret: 'previous' },
    newValues: { secret: 'rotated' },
  })
  return updated
}

export async function deleteWebhook(trx: Transaction<DB>, actor: Actor, id: number): Promise<void> {
  const current = await lockWebhook(trx, id)
  await trx.deleteFrom('webhooks').where('id', '=', id).execute()
  await writeAudit(trx, actor, {
    table: 'webhooks',
    recordId: id,
    action: 'delete',
    oldValues: current,
    newValues: null,
  })
}

/** A webhook's deliveries as the API shows them. */
function deliveriesOf(db: Database, webhookId: number) {
  return (
    db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('events as e', 'e.id', 'd.event_id')
      .select([
        'd.id',
        'e.public_id as event_id',
        'e.type as event_type',
        'd.state',
        'd.attempts',
        'd.last_status',
        'd.last_error',
        'd.delivered_at',
        'd.created_at',
      ])
      // Only a pending delivery has a next attempt.
      .select(sql<Date | null>`case when d.state = 'pending' then d.next_attempt_at end`.as('next_attempt_at'))
      .where('d.webhook_id', '=', webhookId)
  )
}

/** A webhook's deliveries, newest first. */
export async function listDeliveries(db: Database, webhookId: number, page: PageRequest) {
  await getWebhook(db, webhookId)
  return paginate(db, {
    // Already selected; the total counts the same rows.
    matching: deliveriesOf(db, webhookId),
    select: (matching) => matching,
    order: { keys: [], id: 'd.id', direction: 'desc' },
    page,
    filters: { webhook_id: webhookId },
  })
}

export async function getDelivery(db: Database, webhookId: number, deliveryId: number) {
  const delivery = await deliveriesOf(db, webhookId).where('d.id', '=', deliveryId).executeTakeFirst()
  if (!delivery) throw new NotFoundError('Delivery')
  return delivery
}
