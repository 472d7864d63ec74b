import type { Transaction } from 'kysely'
import { diff } from '../audit/write.js'
import { assertActiveUser } from '../auth/active-user.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import { type ClientPatch as ClientInput, createClient } from '../clients/commands.js'
import type { Database } from '../db/database.js'
import { LEAD_CHANNELS, LEAD_STATUSES } from '../db/enums.js'
import { isCalendarDate } from '../db/paginate.js'
import type { DB, LeadChannel, LeadStatus, UserRole } from '../db/types.js'
import { ConflictError, NotFoundError } from '../errors/domain.js'
import { applyLeadChanges, assertLiveClient, createLead } from '../leads/commands.js'
import { assertKnownLostReason, storedAmount } from '../leads/deal.js'
import { LEAD_COLUMNS } from '../leads/queries.js'
import { MAX_LOST_REASON, MAX_NOTES } from '../leads/schemas.js'
import { assertTransition } from '../leads/transitions.js'
import { AMOUNT_PATTERN, isCurrency } from '../money.js'
import { getPipelineSettings } from '../pipeline/service.js'
import { type ClientField, clientInputOf, clientsByPhone, type ImportRules } from './client-import.js'
import { type ColumnMap, cellsOf, headerKey, LEAD_FIELD_ALIASES } from './columns.js'
import type { Applied, ImportOptions, ImportResult, PlannedRow, Report } from './imports.js'
import { batchesOf, headerOf, runImport } from './imports.js'
import type { SheetRow } from './reader.js'

const STATUS_WORDS: Record<string, LeadStatus> = {
  nuevo: 'new',
  contactado: 'contacted',
  cotizado: 'quoted',
  cerrado: 'closed',
  ganado: 'closed',
  descartado: 'discarded',
  perdido: 'discarded',
}

type LeadField = keyof typeof LEAD_FIELD_ALIASES

const leadColumns = (db: Database) => db.selectFrom('leads').select(LEAD_COLUMNS).where('deleted_at', 'is', null)

type ExistingLead = Awaited<ReturnType<ReturnType<typeof leadColumns>['execute']>>[number]

/** Leads by id, and each client's most recent lead on each channel: what a lead row may update. */
async function leadsMatching(db: Database, ids: number[], clientIds: number[]): Promise<ExistingLead[]> {
  const byId = ids.length === 0 ? [] : await leadColumns(db).where('id', 'in', ids).execute()
  const byClient =
    clientIds.length === 0
      ? []
      : await leadColumns(db)
          .distinctOn(['leads.client_id', 'leads.channel'])
          .where('client_id', 'in', clientIds)
          .orderBy('leads.client_id')
          .orderBy('leads.channel')
          .orderBy('leads.created_at', 'desc')
          .orderBy('leads.id', 'desc')
          .execute()
  return [...byId, ...byClient]
}

interface LeadRowInput {
  row: SheetRow
  id?: number
  phone: string
  client: ClientInput
  channel: LeadChannel
  status?: LeadStatus
  assignee?: string
  admin_notes?: string
  sales_notes?: string
  amount?: string
  currency?: string
  expected_close_date?: string
  lost_reason?: string
}

const AMOUNT = new RegExp(AMOUNT_PATTERN)
/** A date as text, or as an XLSX date cell reads (midnight UTC). */
const CELL_DATE = /^(\d{4}-\d{2}-\d{2})(T00:00:00(\.000)?Z)?$/

function leadInputOf(
  row: SheetRow,
  columns: ColumnMap<LeadField>,
  rules: ImportRules,
  report: Report,
): LeadRowInput | null {
  const cells = cellsOf(row.cells, columns)
  const failedBefore = report.result.failed
  if (!cells.phone) report.fail(row.row, columns.header.phone, "is required: the client's phone")
  const client = cells.phone ? clientInputOf(row, cells, columns as ColumnMap<ClientField>, rules, report) : null
  let id: number | undefined
  if (cells.id !== undefined) {
    id = Number(cells.id)
    if (!Number.isSafeInteger(id) || id < 1) report.fail(row.row, columns.header.id, 'must be a lead id')
  }
  const channel = (cells.channel?.toLowerCase() ?? 'manual') as LeadChannel
  if (!LEAD_CHANNELS.includes(channel)) {
    report.fail(row.row, columns.header.channel, `must be one of: ${LEAD_CHANNELS.join(', ')}`)
  }
  const statusWord = cells.status ? headerKey(cells.status) : undefined
  const status = statusWord ? (STATUS_WORDS[statusWord] ?? (statusWord as LeadStatus)) : undefined
  if (status && !LEAD_STATUSES.includes(status)) {
    report.fail(row.row, columns.header.status, `must be one of: ${LEAD_STATUSES.join(', ')}`)
  }
  for (const field of ['admin_notes', 'sales_notes'] as const) {
    if ((cells[field]?.length ?? 0) > MAX_NOTES)
      report.fail(row.row, columns.header[field], `must be at most ${MAX_NOTES} characters`)
  }
  const amount = cells.amount?.trim()
  if (amount !== undefined && !AMOUNT.test(amount)) {
    report.fail(
      row.row,
      columns.header.amount,
      'must be a number of at most 2 decimals, not negative, with a point: 1234.50',
    )
  }
  const currency = cells.currency?.trim().toUpperCase()
  if (currency !== undefined && !isCurrency(currency)) {
    report.fail(row.row, columns.header.currency, `${cells.currency} is not an ISO 4217 currency code`)
  }
  const closeDate = cells.expected_close_date ? CELL_DATE.exec(cells.expected_close_date.trim())?.[1] : undefined
  if (cells.expected_close_date !== undefined && (closeDate === undefined || !isCalendarDate(closeDate))) {
    report.fail(row.row, columns.header.expected_close_date, 'must be a date, 2027-03-31')
  }
  if ((cells.lost_reason?.length ?? 0) > MAX_LOST_REASON) {
    report.fail(row.row, columns.header.lost_reason, `must be at most ${MAX_LOST_REASON} characters`)
  }
  if (report.result.failed > failedBefore || !client) return null
  return {
    row,
    id,
    phone: client.phone as string,
    client,
    channel,
    status,
    assignee: cells.assignee?.toLowerCase(),
    admin_notes: cells.admin_notes,
    sales_notes: cells.sales_notes,
    amount: amount === undefined ? undefined : storedAmount(amount),
    currency,
    expected_close_date: closeDate,
    lost_reason: cells.lost_reason,
  }
}

type LeadChanges = Partial<
  Pick<
    ExistingLead,
    | 'client_id'
    | 'status'
    | 'assigned_to'
    | 'admin_notes'
    | 'sales_notes'
    | 'amount'
    | 'currency'
    | 'expected_close_date'
    | 'lost_reason'
  >
>

/** A lead to update (`id`, with the cells that change it) or to create (with its client when absent). */
interface PlannedLead extends PlannedRow {
  id?: number
  patch: LeadChanges
  channel: LeadChannel
  /** The client, by phone; created from `client` when no live client has that phone. */
  phone: string
  client: ClientInput
  /** An update whose lead moves to the client an earlier row of the file creates by this phone. */
  joinsNewClient?: boolean
}

/**
 * POST /leads/import: a lead a row, its client named by phone (created from the row's client
 * cells when absent), its assignee by username. A row is the same lead as an existing one with the
 * row's `id`, or else as its client's most recent lead on the same channel: create mode refuses
 * such a row, upsert mode updates that lead with the row's non-empty cells.
 */
export async function importLeads(
  db: Database,
  actor: AuthenticatedActor,
  rows: AsyncGenerator<SheetRow>,
  options: ImportOptions,
  rules: ImportRules,
): Promise<ImportResult & { clients_created: number }> {
  const columns = await headerOf(rows, LEAD_FIELD_ALIASES, ['phone'])
  const { lost_reasons: lostReasons } = await getPipelineSettings(db)
  // Phones of the clients the plan creates.
  const newClients = new Set<string>()
  const { result, clientsCreated } = await runImport<PlannedLead>(db, actor, 'leads', options, {
    plan: (report) => planLeads(db, actor, rows, columns, options, rules, report, newClients, lostReasons),
    apply: (trx, items, writer) => applyLeads(trx, writer, items, rules),
    plannedClients: () => newClients.size,
  })
  return { ...result, clients_created: clientsCreated }
}

async function planLeads(
  db: Database,
  actor: AuthenticatedActor,
  rows: AsyncGenerator<SheetRow>,
  columns: ColumnMap<LeadField>,
  options: ImportOptions,
  rules: ImportRules,
  report: Report,
  newClients: Set<string>,
  lostReasons: readonly string[],
): Promise<PlannedLead[]> {
  const firstRowOfLead = new Map<string, number>()
  const users = new Map<string, number | null>()
  const planned: PlannedLead[] = []
  for await (const batch of batchesOf(rows)) {
    const inputs = checkLeadRows(batch, columns, rules, report, firstRowOfLead)
    const unknownUsers = [...new Set(inputs.map((input) => input.assignee))].filter(
      (name): name is string => name !== undefined && !users.has(name),
    )
    if (unknownUsers.length > 0) {
      const found = await db
        .selectFrom('users')
        .select(['id', 'username'])
        .where('username', 'in', unknownUsers)
        .where('is_active', '=', true)
        .execute()
      for (const name of unknownUsers) users.set(name, found.find((user) => user.username === name)?.id ?? null)
    }
    const clients = await clientsByPhone(db, [...new Set(inputs.map((input) => input.phone))])
    const leads = await leadsMatching(
      db,
      inputs.flatMap((input) => (input.id === undefined ? [] : [input.id])),
      [...clients.values()].map((client) => client.id),
    )

    const known: KnownRecords = { users, clients, leads, lostReasons }
    planned.push(...decideLeadRows(inputs, known, columns, options, actor.role, report, newClients))
  }
  return planned
}

/**
 * The rows of a batch whose cells make a lead, each once in the file (by its id, or by its client's
 * phone and channel); the others are failed rows. Pure: no database.
 */
export function checkLeadRows(
  batch: SheetRow[],
  columns: ColumnMap<LeadField>,
  rules: ImportRules,
  report: Report,
  firstRowOfLead: Map<string, number>,
): LeadRowInput[] {
  const inputs: LeadRowInput[] = []
  for (const row of batch) {
    const input = leadInputOf(row, columns, rules, report)
    if (!input) continue
    const key = input.id !== undefined ? `id ${input.id}` : `${input.phone} ${input.channel}`
    const earlier = firstRowOfLead.get(key)
    if (earlier !== undefined) {
      const field = input.id !== undefined ? columns.header.id : columns.header.phone
      report.fail(row.row, field, `is the same lead as row ${earlier} of this file (${key})`)
      continue
    }
    firstRowOfLead.set(key, row.row)
    inputs.push(input)
  }
  return inputs
}

/** What a batch's rows meet in the database: active users by username, clients by phone, the leads they name. */
export interface KnownRecords {
  users: Map<string, number | null>
  clients: Map<string, { id: number }>
  leads: ExistingLead[]
  /** lost_reasons of the pipeline settings: a row that discards a lead names one. */
  lostReasons: readonly string[]
}

/**
 * What each checked row does, given the records it meets: create a lead (and its client), update
 * one, leave it unchanged, or fail (an unknown assignee or id, an existing lead in mode=create, a new
 * client with no name, a transition the table forbids for this role). Pure: no database.
 */
export function decideLeadRows(
  inputs: LeadRowInput[],
  known: KnownRecords,
  columns: ColumnMap<LeadField>,
  options: Pick<ImportOptions, 'mode'>,
  role: UserRole,
  report: Report,
  newClients: Set<string>,
): PlannedLead[] {
  const { users, clients } = known
  const leadById = new Map(known.leads.map((lead) => [lead.id, lead]))
  const latestLead = new Map(known.leads.map((lead) => [`${lead.client_id} ${lead.channel}`, lead]))
  const planned: PlannedLead[] = []
  for (const input of inputs) {
    const { row } = input
    const assignedTo = input.assignee === undefined ? undefined : users.get(input.assignee)
    if (assignedTo === null) {
      report.fail(row.row, columns.header.assignee, `no active user is named ${input.assignee}`)
      continue
    }
    const clientId = clients.get(input.phone)?.id
    let current: ExistingLead | undefined
    if (input.id !== undefined) {
      current = leadById.get(input.id)
      if (!current) {
        report.fail(row.row, columns.header.id, `no lead has id ${input.id}`)
        continue
      }
    } else if (clientId !== undefined) {
      current = latestLead.get(`${clientId} ${input.channel}`)
    }
    const leadField = input.id !== undefined ? columns.header.id : columns.header.phone
    if (current && options.mode === 'create') {
      report.fail(
        row.row,
        leadField,
        `lead ${current.id} of this client on ${current.channel} exists; mode=upsert updates it`,
      )
      continue
    }
    if (clientId === undefined && !newClients.has(input.phone) && !input.client.contact_name) {
      report.fail(row.row, columns.header.contact_name, `is required to create the client with phone ${input.phone}`)
      continue
    }
    const lostReason = lostReasonOf(input, current, known.lostReasons)
    if (typeof lostReason === 'object' && lostReason !== null) {
      report.fail(row.row, columns.header.lost_reason, lostReason.error)
      continue
    }
    const patch: LeadChanges = {
      ...(input.status && { status: input.status }),
      ...(assignedTo !== undefined && { assigned_to: assignedTo }),
      ...(input.admin_notes && { admin_notes: input.admin_notes }),
      ...(input.sales_notes && { sales_notes: input.sales_notes }),
      ...(input.amount && { amount: input.amount }),
      ...(input.currency && { currency: input.currency }),
      ...(input.expected_close_date && { expected_close_date: input.expected_close_date }),
      ...(lostReason !== undefined && { lost_reason: lostReason }),
    }
    const entry = { row: row.row, patch, channel: input.channel, phone: input.phone, client: input.client }
    if (current) {
      const changes = diff(current, { ...(clientId !== undefined && { client_id: clientId }), ...patch })
      // The phone's client does not exist yet: an earlier row of this file creates it, and the lead moves to it.
      const joinsNewClient = clientId === undefined && newClients.has(input.phone)
      if (!changes && !joinsNewClient) {
        report.result.unchanged += 1
        continue
      }
      if (changes?.set.status) {
        try {
          assertTransition(current.status, changes.set.status, role)
        } catch (error) {
          if (!(error instanceof ConflictError)) throw error
          report.fail(row.row, columns.header.status, error.message)
          continue
        }
      }
      report.result.updated += 1
      planned.push({
        ...entry,
        field: leadField,
        kind: 'updated',
        id: current.id,
        patch: changes?.set ?? {},
        joinsNewClient,
      })
      continue
    }
    if (clientId === undefined) newClients.add(input.phone)
    report.result.created += 1
    planned.push({ ...entry, field: columns.header.phone, kind: 'created' })
  }
  return planned
}

/**
 * The lost_reason a row writes, as PATCH /leads/{id}/status would: required (from the list) when
 * the lead is or becomes discarded and has none, refused for any other status, and null when a
 * discarded lead is reopened. undefined: nothing to write.
 */
function lostReasonOf(
  input: LeadRowInput,
  current: ExistingLead | undefined,
  lostReasons: readonly string[],
): string | null | undefined | { error: string } {
  const status = input.status ?? current?.status ?? 'new'
  if (status !== 'discarded') {
    if (input.lost_reason !== undefined) return { error: 'is only for a discarded lead' }
    return current?.status === 'discarded' ? null : undefined
  }
  if (input.lost_reason === undefined) {
    return current?.status === 'discarded' ? undefined : { error: 'is required to discard a lead' }
  }
  if (!lostReasons.includes(input.lost_reason)) {
    return { error: `must be one of lost_reasons (GET /pipeline-settings): ${lostReasons.join(', ')}` }
  }
  return input.lost_reason
}

/**
 * Writes planned lead rows against the leads as they are now (read again and locked): a lead
 * trashed meanwhile, or moved to a status the row may no longer follow, fails its row.
 */
async function applyLeads(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  items: PlannedLead[],
  rules: ImportRules,
): Promise<Applied<PlannedLead>> {
  const ids = items.flatMap((item) => (item.id === undefined ? [] : [item.id]))
  const locked = ids.length === 0 ? [] : await leadColumns(trx).where('id', 'in', ids).forUpdate().execute()
  const current = new Map(locked.map((lead) => [lead.id, lead]))
  let clientsCreated = 0
  const clients = await clientsByPhone(
    trx,
    items.filter((item) => item.id === undefined).map((item) => item.phone),
  )
  for (const item of items) {
    if (item.id !== undefined) {
      await updateLead(trx, actor, current.get(item.id), item)
      continue
    }
    let client = clients.get(item.phone)
    if (!client) {
      // The plan found a client by this phone and so needed no name; it has gone since.
      if (!item.client.contact_name) {
        throw new ConflictError(
          'client_gone',
          `No live client has phone ${item.phone} any more, and the row names none`,
        )
      }
      const fields = { ...item.client, contact_name: item.client.contact_name as string, phone: item.phone }
      client = await createClient(trx, actor, fields, rules)
      clients.set(item.phone, client)
      clientsCreated += 1
    }
    await createLead(trx, actor, {
      client_id: client.id,
      channel: item.channel,
      status: item.patch.status,
      admin_notes: item.patch.admin_notes ?? null,
      sales_notes: item.patch.sales_notes ?? null,
      assigned_to: item.patch.assigned_to ?? null,
      amount: item.patch.amount ?? null,
      currency: item.patch.currency,
      expected_close_date: item.patch.expected_close_date ?? null,
      lost_reason: item.patch.lost_reason ?? undefined,
    })
  }
  return { lost: [], clientsCreated }
}

async function updateLead(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  current: ExistingLead | undefined,
  item: PlannedLead,
): Promise<void> {
  if (!current) throw new NotFoundError(`Lead ${item.id}`)
  let patch = item.patch
  if (item.joinsNewClient) {
    const client = (await clientsByPhone(trx, [item.phone])).get(item.phone)
    if (!client) throw new ConflictError('client_gone', `No live client has phone ${item.phone} any more`)
    patch = { ...patch, client_id: client.id }
  }
  const changes = diff(current, patch)
  if (!changes) return
  // As the JSON routes: the assignee is an active user and the client is live, as they are now.
  if (changes.set.assigned_to != null) await assertActiveUser(trx, changes.set.assigned_to, 'assigned_to')
  if (changes.set.client_id !== undefined) await assertLiveClient(trx, changes.set.client_id)
  if (changes.set.status) assertTransition(current.status, changes.set.status, actor.role)
  // The list as it is now: an admin may have changed it since the plan.
  if (changes.set.lost_reason) await assertKnownLostReason(trx, changes.set.lost_reason)
  await applyLeadChanges(trx, actor, current, changes)
}
