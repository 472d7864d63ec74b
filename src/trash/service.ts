import { type NotNull, sql, type Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import type { Actor } from '../auth/actor.js'
import { CLIENT_COLUMNS, type Client } from '../clients/queries.js'
import type { Database } from '../db/database.js'
import { columnKey, type Page, type PageOrder, type PageRequest, paginate } from '../db/paginate.js'
import type { DB } from '../db/types.js'
import { NotFoundError } from '../errors/domain.js'
import { LEAD_COLUMNS, type Lead, withClient } from '../leads/queries.js'
import { purgeTasksOf } from '../tasks/purge.js'
import type { TrashType } from './schemas.js'

const TRASHED_CLIENT_COLUMNS = [...CLIENT_COLUMNS, 'clients.deleted_at', 'clients.deleted_by'] as const
const TRASHED_LEAD_COLUMNS = [...LEAD_COLUMNS, 'leads.deleted_at', 'leads.deleted_by'] as const

interface TrashMark {
  deleted_at: Date
  deleted_by: number | null
}
export type TrashedClient = Client & TrashMark
export type TrashedLead = Lead & TrashMark

/** GET /trash: the trashed clients or leads, most recently trashed first. */
export async function listTrash(
  db: Database,
  type: TrashType,
  page: PageRequest,
): Promise<Page<TrashedClient> | Page<TrashedLead>> {
  const order = (table: TrashType): PageOrder => ({
    keys: [columnKey(`${table}.deleted_at`, 'timestamp')],
    id: `${table}.id`,
    direction: 'desc',
  })
  if (type === 'clients') {
    return paginate<DB, 'clients', object, 'clients', TrashedClient>(db, {
      matching: db.selectFrom('clients').where('clients.deleted_at', 'is not', null),
      select: (matching) => matching.select(TRASHED_CLIENT_COLUMNS).$narrowType<{ deleted_at: NotNull }>(),
      order: order('clients'),
      page,
      filters: { type },
    })
  }
  return paginate<DB, 'leads', object, 'leads' | 'clients', TrashedLead>(db, {
    matching: db.selectFrom('leads').where('leads.deleted_at', 'is not', null),
    select: (matching) =>
      withClient(matching).select(['leads.deleted_at', 'leads.deleted_by']).$narrowType<{ deleted_at: NotNull }>(),
    order: order('leads'),
    page,
    filters: { type },
  })
}

/** Deletes trashed leads for good, one `purge` audit row each holding the row purged. */
async function purgeLeads(trx: Transaction<DB>, actor: Actor, ids: number[]): Promise<number> {
  if (ids.length === 0) return 0
  await purgeTasksOf(trx, actor, { leadIds: ids, clientIds: [] })
  const purged = await trx
    .deleteFrom('leads')
    .where('id', 'in', ids)
    .where('deleted_at', 'is not', null)
    .returning(TRASHED_LEAD_COLUMNS)
    .execute()
  await writeAudit(
    trx,
    actor,
    purged.map((lead) => ({ table: 'leads', recordId: lead.id, action: 'purge', oldValues: null, newValues: lead })),
  )
  return purged.length
}

/** Deletes trashed clients for good with their leads (all in the trash too), one `purge` audit row each. */
async function purgeClients(trx: Transaction<DB>, actor: Actor, ids: number[]): Promise<number> {
  if (ids.length === 0) return 0
  const leads = await trx
    .selectFrom('leads')
    .select('id')
    .where('client_id', 'in', ids)
    .where('deleted_at', 'is not', null)
    .forUpdate()
    .execute()
  await purgeLeads(
    trx,
    actor,
    leads.map((lead) => lead.id),
  )
  await purgeTasksOf(trx, actor, { leadIds: [], clientIds: ids })
  const purged = await trx
    .deleteFrom('clients')
    .where('id', 'in', ids)
    .where('deleted_at', 'is not', null)
    .returning(TRASHED_CLIENT_COLUMNS)
    .execute()
  await writeAudit(
    trx,
    actor,
    purged.map((client) => ({
      table: 'clients',
      recordId: client.id,
      action: 'purge',
      oldValues: null,
      newValues: client,
    })),
  )
  return purged.length
}

const purgers: Record<TrashType, typeof purgeLeads> = { clients: purgeClients, leads: purgeLeads }

/** DELETE /trash/{type}/{id}: removes one trashed row for good (a client with its trashed leads). */
export async function purgeTrashed(trx: Transaction<DB>, actor: Actor, type: TrashType, id: number): Promise<void> {
  const trashed = await trx
    .selectFrom(type)
    .select('id')
    .where('id', '=', id)
    .where('deleted_at', 'is not', null)
    .forUpdate()
    .executeTakeFirst()
  if (!trashed) throw new NotFoundError(type === 'clients' ? 'Trashed client' : 'Trashed lead')
  await purgers[type](trx, actor, [id])
}

/**
 * Purges what has been in the trash longer than `retentionDays`, in batches of `batchSize` rows a
 * transaction: leads first, then clients (whose leads were trashed with them or before). SKIP
 * LOCKED lets several instances purge at once without waiting on each other.
 */
export async function purgeExpiredTrash(
  db: Database,
  actor: Actor,
  retentionDays: number,
  batchSize = 500,
): Promise<Record<TrashType, number>> {
  const purged: Record<TrashType, number> = { leads: 0, clients: 0 }
  for (const type of ['leads', 'clients'] as const) {
    for (;;) {
      const count = await db.transaction().execute(async (trx) => {
        const expired = await trx
          .selectFrom(type)
          .select('id')
          .where('deleted_at', '<', sql<Date>`now() - make_interval(days => ${retentionDays})`)
          .orderBy('deleted_at')
          .limit(batchSize)
          .forUpdate()
          .skipLocked()
          .execute()
        await purgers[type](
          trx,
          actor,
          expired.map((row) => row.id),
        )
        return expired.length
      })
      purged[type] += count
      if (count < batchSize) break
    }
  }
  return purged
}
