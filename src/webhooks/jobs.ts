import { randomUUID } from 'node:crypto'
import { sql, type Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import { type Actor, eventActor, systemActor } from '../auth/actor.js'
import type { Config } from '../config.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { ConflictError, NotFoundError } from '../errors/domain.js'
import { DELIVERY_LEASE_MARGIN_MS, retryDelayMs } from '../events/retry.js'
import { recordWebhookDelivery } from '../metrics/registry.js'
import { notifyAdmins } from '../notifications/jobs.js'
import { type DeliveryOutcome, deliver, type SignedMessage } from './deliver.js'

/** Failed deliveries in a row (each after all its attempts) that turn a webhook off. */
export const FAILED_DELIVERIES_TO_DISABLE = 20

export interface WebhookJobOptions {
  retryDelaysMs: number[]
  allowPrivateNetworks: boolean
  /** Any 2xx within this time is a success (10 s; shorter in tests). */
  timeoutMs: number
}

export function webhookJobOptions(config: Config): WebhookJobOptions {
  return {
    retryDelaysMs: config.jobRetryDelaysMs,
    allowPrivateNetworks: config.webhookAllowPrivateNetworks,
    timeoutMs: config.webhookTimeoutMs,
  }
}

/** The lease of a claimed delivery: past it, a worker that died is assumed gone and the delivery is claimed again. */
const lease = (options: WebhookJobOptions) =>
  sql<Date>`now() + make_interval(secs => ${(options.timeoutMs + DELIVERY_LEASE_MARGIN_MS) / 1000})`

interface FannedOutEvent {
  id: number
  type: string
  resource_key: string
}

/** Creates one delivery per event and matching active webhook, in the fan-out's transaction. */
export async function planDeliveries(trx: Transaction<DB>, events: FannedOutEvent[]): Promise<void> {
  const webhooks = await trx.selectFrom('webhooks').select(['id', 'events']).where('is_active', '=', true).execute()
  const rows = events.flatMap((event) =>
    webhooks
      .filter((webhook) => webhook.events.includes('*') || webhook.events.includes(event.type))
      .map((webhook) => ({ webhook_id: webhook.id, event_id: event.id, resource_key: event.resource_key })),
  )
  if (rows.length === 0) return
  await trx
    .insertInto('webhook_deliveries')
    .values(rows)
    .onConflict((conflict) => conflict.constraint('webhook_deliveries_once').doNothing())
    .execute()
}

/** The JSON body of an event as webhooks and their receivers see it. */
export function eventBody(event: {
  public_id: string
  type: string
  occurred_at: Date
  actor: unknown
  data: unknown
}): SignedMessage {
  return {
    id: event.public_id,
    body: JSON.stringify({
      id: event.public_id,
      type: event.type,
      occurred_at: event.occurred_at.toISOString(),
      actor: event.actor,
      data: event.data,
    }),
  }
}

interface ClaimedDelivery {
  id: number
  webhook_id: number
  event_id: number
  state: 'pending' | 'delivered' | 'failed'
  attempts: number
}

/**
 * Claims due deliveries with a lease. A delivery waits while an earlier event of the same resource
 * is still pending for the same webhook, so a resource's events arrive in the order they happened.
 */
async function claimDueDeliveries(db: Database, options: WebhookJobOptions, limit: number): Promise<ClaimedDelivery[]> {
  return db
    .updateTable('webhook_deliveries')
    .set({ locked_until: lease(options) })
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
        .select('d.id')
        .where('d.state', '=', 'pending')
        .where('w.is_active', '=', true)
        .where('d.next_attempt_at', '<=', sql<Date>`now()`)
        .where((eb) => eb.or([eb('d.locked_until', 'is', null), eb('d.locked_until', '<', sql<Date>`now()`)]))
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('webhook_deliveries as earlier')
                .select('earlier.id')
                .whereRef('earlier.webhook_id', '=', 'd.webhook_id')
                .whereRef('earlier.resource_key', '=', 'd.resource_key')
                .whereRef('earlier.event_id', '<', 'd.event_id')
                .where('earlier.state', '=', 'pending'),
            ),
          ),
        )
        .orderBy('d.next_attempt_at')
        .orderBy('d.id')
        .limit(limit)
        .forUpdate('d')
        .skipLocked(),
    )
    .returning(['id', 'webhook_id', 'event_id', 'state', 'attempts'])
    .execute()
}

/** What a delivery sends: the webhook's URL and secret, and the event. */
function targetsOf(db: Database, deliveryIds: number[]) {
  return db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .select(['d.id', 'w.url', 'w.secret', 'e.public_id', 'e.type', 'e.occurred_at', 'e.actor', 'e.data'])
    .where('d.id', 'in', deliveryIds)
    .execute()
}

/** Sends claimed deliveries, all at once, and records each outcome. */
async function attempt(
  db: Database,
  deliveries: ClaimedDelivery[],
  options: WebhookJobOptions,
  manual: boolean,
): Promise<void> {
  if (deliveries.length === 0) return
  const targets = new Map(
    (
      await targetsOf(
        db,
        deliveries.map((delivery) => delivery.id),
      )
    ).map((t) => [t.id, t]),
  )
  await Promise.all(
    deliveries.map(async (delivery) => {
      const target = targets.get(delivery.id)
      if (!target) return
      const outcome = await deliver(target, eventBody(target), options)
      recordWebhookDelivery(outcome)
      await recordOutcome(db, delivery, outcome, options, manual)
    }),
  )
}

async function recordOutcome(
  db: Database,
  delivery: ClaimedDelivery,
  outcome: DeliveryOutcome,
  options: WebhookJobOptions,
  manual: boolean,
): Promise<void> {
  const attempts = delivery.attempts + 1
  const result = { attempts, last_status: outcome.status, last_error: outcome.error, locked_until: null }
  if (outcome.ok) {
    // The common case in one statement: delivered, and the webhook's run of failures ends.
    await db
      .with('done', (qb) =>
        qb
          .updateTable('webhook_deliveries')
          .set({ ...result, state: 'delivered', delivered_at: sql<Date>`now()` })
          .where('id', '=', delivery.id)
          .returning('webhook_id'),
      )
      .updateTable('webhooks')
      .set({ failed_deliveries_in_a_row: 0 })
      .where('id', 'in', (eb) => eb.selectFrom('done').select('done.webhook_id'))
      .where('failed_deliveries_in_a_row', '>', 0)
      .execute()
    return
  }
  const delay = retryDelayMs(attempts, options.retryDelaysMs)
  const scheduled = !manual || delivery.state === 'pending'
  const failedForGood = outcome.gone || !scheduled || delay === null
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('webhook_deliveries')
      .set({
        ...result,
        ...(failedForGood
          ? { state: 'failed' }
          : { next_attempt_at: sql<Date>`now() + make_interval(secs => ${(delay ?? 0) / 1000})` }),
      })
      .where('id', '=', delivery.id)
      .execute()
    if (outcome.gone) {
      await disableWebhook(trx, delivery.webhook_id, 'the receiver answered 410 Gone')
    } else if (failedForGood && scheduled) {
      const webhook = await trx
        .updateTable('webhooks')
        .set({ failed_deliveries_in_a_row: sql`failed_deliveries_in_a_row + 1` })
        .where('id', '=', delivery.webhook_id)
        .returning('failed_deliveries_in_a_row')
        .executeTakeFirst()
      if (webhook && webhook.failed_deliveries_in_a_row >= FAILED_DELIVERIES_TO_DISABLE) {
        await disableWebhook(
          trx,
          delivery.webhook_id,
          `${FAILED_DELIVERIES_TO_DISABLE} deliveries in a row failed after every attempt`,
        )
      }
    }
  })
}

/** Turns a webhook off (once), with its audit row, and mails the admins. */
async function disableWebhook(trx: Transaction<DB>, webhookId: number, reason: string): Promise<void> {
  const disabled = await trx
    .updateTable('webhooks')
    .set({ is_active: false, disabled_reason: reason, updated_at: sql`now()` })
    .where('id', '=', webhookId)
    .where('is_active', '=', true)
    .returning(['id', 'url', 'updated_at'])
    .executeTakeFirst()
  if (!disabled) return
  await writeAudit(trx, systemActor(), {
    table: 'webhooks',
    recordId: webhookId,
    action: 'update',
    oldValues: { is_active: true, disabled_reason: null },
    newValues: { is_active: false, disabled_reason: reason },
  })
  await notifyAdmins(trx, `webhook_disabled:${webhookId}:${disabled.updated_at.toISOString()}`, 'webhook_disabled', {
    id: webhookId,
    url: disabled.url,
    reason,
  })
}

/** Claims and sends due deliveries, a few at a time; returns how many it claimed. */
export async function deliverDueWebhooks(db: Database, options: WebhookJobOptions, limit: number): Promise<number> {
  const claimed = await claimDueDeliveries(db, options, limit)
  await attempt(db, claimed, options, false)
  return claimed.length
}

/** POST /webhooks/{id}/deliveries/{delivery_id}/retry: one attempt now, whatever the delivery's state. */
export async function retryDelivery(
  db: Database,
  webhookId: number,
  deliveryId: number,
  options: WebhookJobOptions,
): Promise<void> {
  const exists = await db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('id', '=', deliveryId)
    .where('webhook_id', '=', webhookId)
    .executeTakeFirst()
  if (!exists) throw new NotFoundError('Delivery')
  const claimed = await db
    .updateTable('webhook_deliveries')
    .set({ locked_until: lease(options) })
    .where('id', '=', deliveryId)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', sql<Date>`now()`)]))
    .returning(['id', 'webhook_id', 'event_id', 'state', 'attempts'])
    .executeTakeFirst()
  if (!claimed) throw new ConflictError('delivery_in_progress', 'This delivery is being attempted right now')
  await attempt(db, [claimed], options, true)
}

/** POST /webhooks/{id}/ping: a signed webhook.ping sent now; nothing is stored. */
export async function pingWebhook(
  db: Database,
  actor: Actor,
  webhookId: number,
  options: WebhookJobOptions,
): Promise<DeliveryOutcome> {
  const webhook = await db
    .selectFrom('webhooks')
    .select(['id', 'url', 'secret'])
    .where('id', '=', webhookId)
    .executeTakeFirst()
  if (!webhook) throw new NotFoundError('Webhook')
  const id = `evt_${randomUUID().replaceAll('-', '')}`
  const message = eventBody({
    public_id: id,
    type: 'webhook.ping',
    occurred_at: new Date(),
    actor: eventActor(actor),
    data: { id: webhook.id, object: { webhook_id: webhook.id } },
  })
  return deliver(webhook, message, options)
}
