import { type TObject, Type } from '@sinclair/typebox'
import { ClientListQuery } from '../clients/schemas.js'
import { StringEnum } from '../http/schemas.js'
import { LeadListQuery } from '../leads/schemas.js'
import { EXPORT_FORMATS, XLSX_MEDIA_TYPE } from './writer.js'

const PAGING = new Set(['limit', 'offset', 'cursor'])

/** A list's query without its paging: every filter and the sort, plus the file format. */
function exportQuery<T extends TObject>(listQuery: T) {
  const properties = Object.fromEntries(Object.entries(listQuery.properties).filter(([name]) => !PAGING.has(name)))
  return Type.Object(
    {
      ...properties,
      format: Type.Optional(
        StringEnum(EXPORT_FORMATS, {
          description: `csv or xlsx; without it, the Accept header decides (CSV by default)`,
        }),
      ),
    },
    { additionalProperties: false },
  )
}

export const ClientExportQuery = exportQuery(ClientListQuery)
export const LeadExportQuery = exportQuery(LeadListQuery)

export const exportResponse = {
  description: 'The spreadsheet, streamed, as an attachment',
  content: {
    'text/csv': { schema: { type: 'string', description: 'UTF-8 with a BOM, a header row of the documented columns' } },
    [XLSX_MEDIA_TYPE]: { schema: { type: 'string', format: 'binary' } },
  },
}

export const importBody = {
  content: {
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['file'],
        properties: { file: { type: 'string', format: 'binary', description: 'A .csv or .xlsx file' } },
      },
    },
    'text/csv': { schema: { type: 'string' } },
    [XLSX_MEDIA_TYPE]: { schema: { type: 'string', format: 'binary' } },
  },
}

export const ImportQuery = Type.Object(
  {
    dry_run: Type.Boolean({
      default: false,
      description: 'Check every row and answer as the import would; write nothing',
    }),
    mode: StringEnum(['create', 'upsert'] as const, {
      default: 'create',
      description: 'create: an existing record is a row error; upsert: it takes the row’s non-empty cells',
    }),
    partial: Type.Boolean({
      default: false,
      description:
        'Write the good rows even when others fail (by default a row that fails the check writes nothing; see the import description)',
    }),
  },
  { additionalProperties: false },
)

export const ImportResultSchema = Type.Object(
  {
    created: Type.Integer({ minimum: 0 }),
    updated: Type.Integer({ minimum: 0 }),
    unchanged: Type.Integer({ minimum: 0 }),
    failed: Type.Integer({ minimum: 0 }),
    errors: Type.Array(
      Type.Object(
        {
          row: Type.Integer({ description: 'The row number as the spreadsheet shows it (the header is row 1)' }),
          field: Type.String({ description: "The column's header as the file writes it" }),
          message: Type.String(),
        },
        { additionalProperties: false },
      ),
      { description: 'The first 1,000 row errors' },
    ),
    clients_created: Type.Optional(Type.Integer({ minimum: 0, description: 'Lead imports: clients created for them' })),
  },
  { $id: 'ImportResult', additionalProperties: false },
)

export const spreadsheetSchemas = [ImportResultSchema]
