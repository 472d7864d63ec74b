import type { Transaction } from 'kysely'
import { writeAudit } from '../audit/write.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import {
  assertCompanyWhenJuridical,
  type ClientPatch as ClientInput,
  normalize as normalizeClient,
  updateClient,
} from '../clients/commands.js'
import { CLIENT_COLUMNS, type Client, type ClientRules, liveClients } from '../clients/queries.js'
import type { Database } from '../db/database.js'
import type { DB } from '../db/types.js'
import { type FieldError, ValidationError } from '../errors/domain.js'
import { writeEvent } from '../events/outbox.js'
import { normalizePhone } from '../phone.js'
import { CLIENT_FIELD_ALIASES, type ColumnMap, cellsOf, headerKey } from './columns.js'
import {
  type Applied,
  batchesOf,
  headerOf,
  type ImportOptions,
  type ImportResult,
  type PlannedRow,
  type Report,
  runImport,
} from './imports.js'
import type { SheetRow } from './reader.js'

/**
 * The client rules of an import: those of POST /clients, and its field check (lengths, email
 * format), which the routes compile with the same validator as PATCH /clients' body.
 */
export interface ImportRules extends ClientRules {
  checkClientFields(input: ClientInput): FieldError[]
}

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

export type ClientField = keyof typeof CLIENT_FIELD_ALIASES

/** A row's client cells checked and normalised as POST /clients does; problems go to the report. */
export function clientInputOf(
  row: SheetRow,
  cells: Partial<Record<ClientField, string>>,
  columns: ColumnMap<ClientField>,
  rules: ImportRules,
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
  const fieldProblems = rules.checkClientFields(input)
  if (fieldProblems.length > 0) {
    for (const error of fieldProblems) {
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

export async function clientsByPhone(db: Database, phones: string[]): Promise<Map<string, Client>> {
  if (phones.length === 0) return new Map()
  const found = await liveClients(db).select(CLIENT_COLUMNS).where('phone', 'in', phones).execute()
  return new Map(found.map((client) => [client.phone, client]))
}

function changedFields(current: Client, input: ClientInput): boolean {
  return (Object.keys(input) as Array<keyof ClientInput>).some((key) => input[key] !== current[key])
}

interface PlannedClient extends PlannedRow {
  input: ClientInput & { phone: string }
  /** The client the row updates. */
  id?: number
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
  rules: ImportRules,
): Promise<ImportResult> {
  const columns = await headerOf(rows, CLIENT_FIELD_ALIASES, ['phone'])
  const { result } = await runImport<PlannedClient>(db, actor, 'clients', options, {
    plan: (report) => planClients(db, rows, columns, options, rules, report),
    apply: (trx, items, writer) => applyClients(trx, writer, items, rules),
  })
  return result
}

async function planClients(
  db: Database,
  rows: AsyncGenerator<SheetRow>,
  columns: ColumnMap<ClientField>,
  options: ImportOptions,
  rules: ImportRules,
  report: Report,
): Promise<PlannedClient[]> {
  const firstRowOfPhone = new Map<string, number>()
  const planned: PlannedClient[] = []
  for await (const batch of batchesOf(rows)) {
    const checked = checkClientRows(batch, columns, rules, report, firstRowOfPhone)
    const existing = await clientsByPhone(
      db,
      checked.map((entry) => entry.input.phone),
    )
    planned.push(...decideClientRows(checked, existing, columns, options, report))
  }
  return planned
}

export interface CheckedClientRow {
  row: SheetRow
  input: ClientInput & { phone: string }
}

/**
 * The rows of a batch whose client cells pass the rules of POST /clients, with their phone in E.164;
 * the others, and a phone an earlier row of the file has, are failed rows. Pure: no database.
 */
export function checkClientRows(
  batch: SheetRow[],
  columns: ColumnMap<ClientField>,
  rules: ImportRules,
  report: Report,
  firstRowOfPhone: Map<string, number>,
): CheckedClientRow[] {
  const checked: CheckedClientRow[] = []
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
    checked.push({ row, input: { ...input, phone } })
  }
  return checked
}

/**
 * What each checked row does, given the live clients that have its phone: create, update, leave
 * unchanged, or fail (a phone taken in mode=create, a new client with no name). Pure: no database.
 */
export function decideClientRows(
  checked: CheckedClientRow[],
  existing: Map<string, Client>,
  columns: ColumnMap<ClientField>,
  options: Pick<ImportOptions, 'mode'>,
  report: Report,
): PlannedClient[] {
  const planned: PlannedClient[] = []
  for (const { row, input } of checked) {
    const current = existing.get(input.phone)
    const field = columns.header.phone
    if (current && options.mode === 'create') {
      report.fail(row.row, field, `client ${current.id} already has phone ${current.phone}; mode=upsert updates it`)
    } else if (current) {
      if (changedFields(current, input)) {
        report.result.updated += 1
        planned.push({ row: row.row, field, kind: 'updated', input, id: current.id })
      } else {
        report.result.unchanged += 1
      }
    } else if (!input.contact_name) {
      report.fail(row.row, columns.header.contact_name, 'is required for a new client')
    } else {
      report.result.created += 1
      planned.push({ row: row.row, field, kind: 'created', input })
    }
  }
  return planned
}

async function applyClients(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  items: PlannedClient[],
  rules: ImportRules,
): Promise<Applied<PlannedClient>> {
  const lost = await insertClients(
    trx,
    actor,
    items.filter((item) => item.kind === 'created'),
  )
  for (const item of items) {
    if (item.id !== undefined) await updateClient(trx, actor, item.id, item.input, rules)
  }
  return { lost, clientsCreated: 0 }
}

/** One INSERT and one audit INSERT for a batch; a phone taken meanwhile by another request loses its row. */
async function insertClients(
  trx: Transaction<DB>,
  actor: AuthenticatedActor,
  creates: PlannedClient[],
): Promise<Applied<PlannedClient>['lost']> {
  if (creates.length === 0) return []
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
  const insertedPhones = new Set(inserted.map((client) => client.phone))
  return creates
    .filter((item) => !insertedPhones.has(item.input.phone))
    .map((item) => ({ item, message: `a client with phone ${item.input.phone} was created meanwhile` }))
}
