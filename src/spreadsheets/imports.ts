import type { TSchema } from '@sinclair/typebox'
import type { ValidateFunction } from 'ajv'
import type { Transaction } from 'kysely'
import { diff, writeAudit } from '../audit/write.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import {
  assertCompanyWhenJuridical,
  type ClientPatch as ClientInput,
  createClient,
  normalize as normalizeClient,
  updateClient,
} from '../clients/commands.js'
import { CLIENT_COLUMNS, type Client, type ClientRules, liveClients } from '../clients/queries.js'
import { ClientTypeSchema, ClientUpdateSchema } from '../clients/schemas.js'
import type { Database } from '../db/database.js'
import { LEAD_CHANNELS, LEAD_STATUSES } from '../db/enums.js'
import type { DB, LeadChannel, LeadStatus } from '../db/types.js'
import { ConflictError, DomainError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { createValidatorCompiler, fieldErrors } from '../http/validation.js'
import { applyChange, createLead } from '../leads/commands.js'
import { LEAD_COLUMNS } from '../leads/queries.js'
import { assertTransition } from '../leads/transitions.js'
import { normalizePhone } from '../phone.js'
import { CLIENT_FIELD_ALIASES, type ColumnMap, cellsOf, headerKey, LEAD_FIELD_ALIASES, mapColumns } from './columns.js'
import type { SheetRow } from './reader.js'

export interface ImportOptions {
  dryRun: boolean
  mode: 'create' | 'upsert'
  partial: boolean
}

export interface RowError {
  row: number
  field: string
  message: string
}

export interface ImportResult {
  created: number
  updated: number
  unchanged: number
  failed: number
  errors: RowError[]
}

// Enough to fix a file by; a file where every row fails would otherwise answer with megabytes.
export const MAX_REPORTED_ERRORS = 1000
const ROWS_PER_BATCH = 1000

class Report {
  readonly result: ImportResult = { created: 0, updated: 0, unchanged: 0, failed: 0, errors: [] }

  fail(row: number, field: string, message: string): void {
    this.result.failed += 1
    if (this.result.errors.length < MAX_REPORTED_ERRORS) this.result.errors.push({ row, field, message })
  }
}

/** Thrown inside the transaction to roll it back once the answer is known. */
class Rollback extends Error {}

/**
 * Runs an import in one transaction: all of it is written, or (a dry run, or a failed row without
 * partial=true) none of it. The rows stream in and are handled a batch at a time.
 */
async function runImport<Extra extends object>(
  db: Database,
  options: ImportOptions,
  rows: AsyncGenerator<SheetRow>,
  handleBatch: (trx: Transaction<DB>, batch: SheetRow[], report: Report, write: boolean) => Promise<void>,
  extra: Extra,
): Promise<ImportResult & Extra> {
  const report = new Report()
  const mayWrite = () => !options.dryRun && (options.partial || report.result.failed === 0)
  try {
    await db.transaction().execute(async (trx) => {
      let batch: SheetRow[] = []
      for await (const row of rows) {
        batch.push(row)
        if (batch.length === ROWS_PER_BATCH) {
          await handleBatch(trx, batch, report, mayWrite())
          batch = []
        }
      }
      if (batch.length > 0) await handleBatch(trx, batch, report, mayWrite())
      if (!mayWrite()) throw new Rollback()
    })
  } catch (error) {
    if (!(error instanceof Rollback)) throw error
  }
  if (!options.dryRun && !options.partial && report.result.failed > 0) {
    throw new DomainError(
      422,
      'import_failed',
      `${report.result.failed} row(s) failed, so nothing was written; fix them, or send partial=true to keep the good rows`,
      { created: 0, updated: 0, unchanged: 0, failed: report.result.failed, errors: report.result.errors },
    )
  }
  return { ...report.result, ...extra }
}

/** The header row, mapped to fields; an empty file is a 400. */
async function headerOf<F extends string>(
  rows: AsyncGenerator<SheetRow>,
  aliases: Record<F, readonly string[]>,
  required: NoInfer<F>[],
): Promise<ColumnMap<F>> {
  const first = await rows.next()
  if (first.done) throw ValidationError.field('file', 'is empty: the first row must name the columns')
  return mapColumns(first.value.cells, aliases, required)
}

// The same rules as POST /clients and PATCH /clients (lengths, email format), through the same validator.
const validateClientFields = createValidatorCompiler([ClientTypeSchema])({
  schema: ClientUpdateSchema as TSchema,
  httpPart: 'body',
  method: 'POST',
  url: '/clients/import',
}) as ValidateFunction

const CLIENT_TYPE_WORDS: Record<string, string> = {
  natural: 'natural',
  persona: 'natural',
  persona_natural: 'natural',
  juridical: 'juridical',
  juridica: 'juridical',
  persona_juridica: 'juridical',
  empresa: 'juridical',
  company: 'juridical',
}

type ClientField = keyof typeof CLIENT_FIELD_ALIASES

/** A row's client cells checked and normalised as POST /clients does; problems go to the report. */
function clientInputOf(
  row: SheetRow,
  cells: Partial<Record<ClientField, string>>,
  columns: ColumnMap<ClientField>,
  rules: ClientRules,
  report: Report,
): ClientInput | null {
  const input: ClientInput = {
    ...(cells.client_type && {
      client_type: (CLIENT_TYPE_WORDS[headerKey(cells.client_type)] ?? cells.client_type) as ClientInput['client_type'],
    }),
    ...(cells.contact_name && { contact_name: cells.contact_name }),
    ...(cells.company_name && { company_name: cells.company_name }),
    ...(cells.phone && { phone: cells.phone }),
    ...(cells.email && { email: cells.email }),
    ...(cells.address && { address: cells.address }),
  }
  if (!validateClientFields(input)) {
    for (const error of fieldErrors(validateClientFields.errors ?? [], 'body')) {
      report.fail(row.row, columns.header[error.field as ClientField] ?? error.field, error.message)
    }
    return null
  }
  // Checked first without an exception: a file of bad phones would otherwise build an Error a row.
  const phone = input.phone === undefined ? undefined : normalizePhone(input.phone, rules.defaultPhoneRegion)
  if (phone && !phone.ok) {
    report.fail(row.row, columns.header.phone, phone.reason)
    return null
  }
  try {
    const normalized = normalizeClient(input, rules)
    assertCompanyWhenJuridical(normalized)
    return normalized
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error
    for (const entry of error.errors) {
      report.fail(row.row, columns.header[entry.field as ClientField] ?? entry.field, entry.message)
    }
    return null
  }
}

async function clientsByPhone(trx: Transaction<DB>, phones: string[]): Promise<Map<string, Client>> {
  if (phones.length === 0) return new Map()
  const found = await liveClients(trx).select(CLIENT_COLUMNS).where('phone', 'in', phones).execute()
  return new Map(found.map((client) => [client.phone, client]))
}

function changedFields(current: Client, input: ClientInput): boolean {
  return (Object.keys(input) as Array<keyof ClientInput>).some((key) => input[key] !== current[key])
}

/**
 * POST /clients/import: one client a row, found by its phone however written. In create mode a
 * phone that exists is a row error; in upsert mode that client takes the row's non-empty cells.
 */
export async function importClients(
  db: Database,
  actor: AuthenticatedActor,
  rows: AsyncGenerator<SheetRow>,
  options: ImportOptions,
  rules: ClientRules,
): Promise<ImportResult> {
  const columns = await headerOf(rows, CLIENT_FIELD_ALIASES, ['phone'])
  const firstRowOfPhone = new Map<string, number>()
  return runImport(
    db,
    options,
    rows,
    async (trx, batch, report, write) => {
      const valid: Array<{ row: SheetRow; input: ClientInput & { phone: string } }> = []
      for (const row of batch) {
        const cells = cellsOf(row.cells, columns)
        if (!cells.phone) {
          report.fail(row.row, columns.header.phone, 'is required')
          continue
        }
        const input = clientInputOf(row, cells, columns, rules, report)
        if (!input) continue
        const phone = input.phone as string
        const earlier = firstRowOfPhone.get(phone)
        if (earlier !== undefined) {
          report.fail(row.row, columns.header.phone, `${phone} is already in row ${earlier} of this file`)
          continue
        }
        firstRowOfPhone.set(phone, row.row)
        valid.push({ row, input: { ...input, phone } })
      }

      const existing = await clientsByPhone(
        trx,
        valid.map((entry) => entry.input.phone),
      )
      const creates: typeof valid = []
      const updates: Array<{ id: number; input: ClientInput }> = []
      for (const entry of valid) {
        const current = existing.get(entry.input.phone)
        if (current && options.mode === 'create') {
          report.fail(
            entry.row.row,
            columns.header.phone,
            `client ${current.id} already has phone ${current.phone}; mode=upsert updates it`,
          )
        } else if (current) {
          if (changedFields(current, entry.input)) {
            report.result.updated += 1
            updates.push({ id: current.id, input: entry.input })
          } else {
            report.result.unchanged += 1
          }
        } else if (!entry.input.contact_name) {
          report.fail(entry.row.row, columns.header.contact_name, 'is required for a new client')
        } else {
          report.result.created += 1
          creates.push(entry)
        }
      }
      if (!write) return
      await insertClients(trx, actor, creates, report)
      for (const update of updates) await updateClient(trx, actor, update.id, update.input, rules)
    },
    {},
  )
}

/** One INSERT and one audit INSERT for a batch; a phone taken meanwhile by another request fails its row. */
async function insertClients(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  creates: Array<{ row: SheetRow; input: ClientInput & { phone: string } }>,
  report: Report,
): Promise<void> {
  if (creates.length === 0) return
  const inserted = await trx
    .insertInto('clients')
    .values(
      creates.map(({ input }) => ({
        client_type: input.client_type ?? 'natural',
        contact_name: input.contact_name as string,
        company_name: input.company_name ?? null,
        phone: input.phone,
        email: input.email ?? null,
        address: input.address ?? null,
        created_by: actor.userId,
      })),
    )
    .onConflict((conflict) => conflict.column('phone').where('deleted_at', 'is', null).doNothing())
    .returning(CLIENT_COLUMNS)
    .execute()
  if (inserted.length < creates.length) {
    const insertedPhones = new Set(inserted.map((client) => client.phone))
    for (const { row, input } of creates) {
      if (insertedPhones.has(input.phone)) continue
      report.result.created -= 1
      report.fail(row.row, 'phone', `a client with phone ${input.phone} was created meanwhile`)
    }
  }
  await writeAudit(
    trx,
    actor,
    inserted.map((client) => ({
      table: 'clients',
      recordId: client.id,
      action: 'create',
      oldValues: null,
      newValues: client,
    })),
  )
  await writeEvent(
    trx,
    actor,
    inserted.map((client) => ({
      type: 'client.created' as const,
      resource: 'client' as const,
      id: client.id,
      old: null,
      new: client,
      object: client,
    })),
  )
}

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

type ExistingLead = Awaited<ReturnType<typeof leadsMatching>>[number]

/** Leads by id, and each client's most recent lead on each channel: what a lead row may update. */
async function leadsMatching(trx: Transaction<DB>, ids: number[], clientIds: number[]) {
  const byId =
    ids.length === 0
      ? []
      : await trx
          .selectFrom('leads')
          .select(LEAD_COLUMNS)
          .where('id', 'in', ids)
          .where('deleted_at', 'is', null)
          .execute()
  const byClient =
    clientIds.length === 0
      ? []
      : await trx
          .selectFrom('leads')
          .select(LEAD_COLUMNS)
          .distinctOn(['leads.client_id', 'leads.channel'])
          .where('client_id', 'in', clientIds)
          .where('deleted_at', 'is', null)
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
}

function leadInputOf(
  row: SheetRow,
  columns: ColumnMap<LeadField>,
  rules: ClientRules,
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
    if ((cells[field]?.length ?? 0) > 5000)
      report.fail(row.row, columns.header[field], 'must be at most 5000 characters')
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
  }
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
  rules: ClientRules,
): Promise<ImportResult & { clients_created: number }> {
  const columns = await headerOf(rows, LEAD_FIELD_ALIASES, ['phone'])
  const extra = { clients_created: 0 }
  const firstRowOfLead = new Map<string, number>()
  // Clients this import creates, by phone; -1 in a dry run, which creates none.
  const newClients = new Map<string, number>()
  const users = new Map<string, number | null>()

  const result = await runImport(
    db,
    options,
    rows,
    async (trx, batch, report, write) => {
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

      const unknownUsers = [...new Set(inputs.map((input) => input.assignee))].filter(
        (name): name is string => name !== undefined && !users.has(name),
      )
      if (unknownUsers.length > 0) {
        const found = await trx
          .selectFrom('users')
          .select(['id', 'username'])
          .where('username', 'in', unknownUsers)
          .where('is_active', '=', true)
          .execute()
        for (const name of unknownUsers) users.set(name, found.find((user) => user.username === name)?.id ?? null)
      }
      const clients = await clientsByPhone(trx, [...new Set(inputs.map((input) => input.phone))])
      const leads = await leadsMatching(
        trx,
        inputs.flatMap((input) => (input.id === undefined ? [] : [input.id])),
        [...clients.values()].map((client) => client.id),
      )
      const leadById = new Map(leads.map((lead) => [lead.id, lead]))
      const latestLead = new Map(leads.map((lead) => [`${lead.client_id} ${lead.channel}`, lead]))

      for (const input of inputs) {
        const { row } = input
        const assignedTo = input.assignee === undefined ? undefined : users.get(input.assignee)
        if (assignedTo === null) {
          report.fail(row.row, columns.header.assignee, `no active user is named ${input.assignee}`)
          continue
        }
        let clientId = clients.get(input.phone)?.id ?? newClients.get(input.phone)
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
        if (current && options.mode === 'create') {
          report.fail(
            row.row,
            input.id !== undefined ? columns.header.id : columns.header.phone,
            `lead ${current.id} of this client on ${current.channel} exists; mode=upsert updates it`,
          )
          continue
        }
        if (clientId === undefined && !input.client.contact_name) {
          report.fail(
            row.row,
            columns.header.contact_name,
            `is required to create the client with phone ${input.phone}`,
          )
          continue
        }

        if (current) {
          const patch = {
            ...(clientId !== undefined && { client_id: clientId }),
            ...(input.status && { status: input.status }),
            ...(assignedTo !== undefined && { assigned_to: assignedTo }),
            ...(input.admin_notes && { admin_notes: input.admin_notes }),
            ...(input.sales_notes && { sales_notes: input.sales_notes }),
          }
          const changes = diff(current, patch)
          if (!changes) {
            report.result.unchanged += 1
            continue
          }
          if (changes.set.status) {
            try {
              assertTransition(current.status, changes.set.status, actor.role)
            } catch (error) {
              if (!(error instanceof ConflictError)) throw error
              report.fail(row.row, columns.header.status, error.message)
              continue
            }
          }
          report.result.updated += 1
          if (write) {
            // One audit row per row; one event per kind of change, as the JSON routes publish them.
            const statusChanged = changes.set.status !== undefined
            const assigneeChanged = changes.set.assigned_to !== undefined
            const eventType = statusChanged ? 'lead.status_changed' : assigneeChanged ? 'lead.assigned' : 'lead.updated'
            const lead = await applyChange(trx, actor, eventType, current, changes, { statusChanged })
            if (statusChanged && assigneeChanged) {
              await writeEvent(trx, actor, {
                type: 'lead.assigned',
                resource: 'lead',
                id: lead.id,
                old: { assigned_to: current.assigned_to },
                new: { assigned_to: lead.assigned_to },
                object: lead,
              })
            }
          }
          continue
        }

        if (clientId === undefined) {
          extra.clients_created += 1
          clientId = write
            ? (
                await createClient(
                  trx,
                  actor,
                  { ...input.client, contact_name: input.client.contact_name as string, phone: input.phone },
                  rules,
                )
              ).id
            : -1
          newClients.set(input.phone, clientId)
        }
        report.result.created += 1
        if (write) {
          await createLead(trx, actor, {
            client_id: clientId,
            channel: input.channel,
            status: input.status,
            admin_notes: input.admin_notes ?? null,
            sales_notes: input.sales_notes ?? null,
            assigned_to: assignedTo ?? null,
          })
        }
      }
    },
    extra,
  )
  return result
}
