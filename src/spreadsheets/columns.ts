import { ValidationError } from '../errors/domain.js'

/** `Teléfono `, `TELEFONO` and `telefono` are one header: lower-case, no accents, `_` for spaces. */
export function headerKey(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{Diacritic}/gu, '')
    .trim()
    .toLowerCase()
    .replace(/[\s\-.]+/g, '_')
}

/** Each field an import reads, with the headers (English and Spanish) that name it. */
export type FieldAliases<F extends string> = Record<F, readonly string[]>

export const CLIENT_FIELD_ALIASES = {
  client_type: ['client_type', 'type', 'tipo', 'tipo_cliente', 'tipo_de_cliente'],
  contact_name: ['contact_name', 'client_name', 'name', 'nombre', 'contacto', 'nombre_contacto', 'nombre_de_contacto'],
  company_name: ['company_name', 'client_company', 'company', 'empresa', 'compania', 'razon_social'],
  phone: ['phone', 'client_phone', 'telefono', 'tel', 'celular', 'movil', 'whatsapp'],
  email: ['email', 'e_mail', 'correo', 'correo_electronico'],
  address: ['address', 'direccion'],
} as const satisfies FieldAliases<string>

export const LEAD_FIELD_ALIASES = {
  ...CLIENT_FIELD_ALIASES,
  id: ['id', 'lead_id'],
  channel: ['channel', 'canal'],
  status: ['status', 'estado'],
  assignee: ['assignee_username', 'assignee', 'asignado', 'asignado_a', 'vendedor', 'responsable'],
  admin_notes: ['admin_notes', 'notas_admin', 'notas_administrativas'],
  sales_notes: ['sales_notes', 'notas', 'notas_ventas', 'notas_de_venta'],
  amount: ['amount', 'monto', 'valor', 'importe'],
  currency: ['currency', 'moneda', 'divisa'],
  expected_close_date: ['expected_close_date', 'fecha_de_cierre', 'fecha_cierre', 'cierre_esperado'],
  lost_reason: ['lost_reason', 'motivo_de_perdida', 'motivo_perdida', 'razon_de_perdida'],
} as const satisfies FieldAliases<string>

/** Where each field is in a row, and its header as the file writes it (row errors name it so). */
export interface ColumnMap<F extends string> {
  index: Partial<Record<F, number>>
  header: Record<F, string>
}

export function mapColumns<F extends string>(
  headerCells: string[],
  aliases: FieldAliases<F>,
  required: NoInfer<F>[],
): ColumnMap<F> {
  const byAlias = new Map<string, F>()
  for (const [field, names] of Object.entries(aliases) as Array<[F, readonly string[]]>) {
    for (const name of names) byAlias.set(name, field)
  }
  const index: Partial<Record<F, number>> = {}
  const header = Object.fromEntries(Object.keys(aliases).map((field) => [field, field])) as Record<F, string>
  headerCells.forEach((cell, position) => {
    const field = byAlias.get(headerKey(cell))
    if (!field) return // Columns of our own exports that an import does not write (ids, dates) and any other.
    if (index[field] !== undefined) {
      throw ValidationError.field('file', `has two columns for ${field}: "${header[field]}" and "${cell}"`)
    }
    index[field] = position
    header[field] = cell
  })
  const missing = required.filter((field) => index[field] === undefined)
  if (missing.length > 0) {
    throw new ValidationError(
      missing.map((field) => ({
        field: 'file',
        message: `has no column for ${field} (its header may be any of: ${aliases[field].join(', ')})`,
      })),
    )
  }
  return { index, header }
}

/** The row's non-empty cells, by field. */
export function cellsOf<F extends string>(cells: string[], columns: ColumnMap<F>): Partial<Record<F, string>> {
  const values: Partial<Record<F, string>> = {}
  for (const [field, position] of Object.entries(columns.index) as Array<[F, number]>) {
    const value = cells[position]
    if (value) values[field] = value
  }
  return values
}
