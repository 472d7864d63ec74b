import { once } from 'node:events'
import { PassThrough, Readable } from 'node:stream'
import { stringify } from 'csv-stringify/sync'
import ExcelJS from 'exceljs'
import { DomainError } from '../errors/domain.js'
import { neutraliseFormula } from './cells.js'

export const EXPORT_FORMATS = ['csv', 'xlsx'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export const XLSX_MEDIA_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
export const MEDIA_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  xlsx: XLSX_MEDIA_TYPE,
}

export type CellValue = string | number | Date | null

export interface ExportColumn<Row> {
  /** The documented column name, the header row's cell. */
  header: string
  value(row: Row): CellValue
  /** Characters, for the XLSX column. */
  width?: number
}

/** `format` wins; otherwise Accept decides, and no Accept (or a wildcard) means CSV. */
export function chooseFormat(format: ExportFormat | undefined, accept: string | undefined): ExportFormat {
  if (format) return format
  if (!accept) return 'csv'
  const types = accept.split(',').map((entry) => entry.split(';')[0]?.trim().toLowerCase())
  if (types.includes(XLSX_MEDIA_TYPE)) return 'xlsx'
  if (types.some((type) => type === 'text/csv' || type === 'text/*' || type === '*/*')) return 'csv'
  throw new DomainError(406, 'not_acceptable', `Exports are text/csv or ${XLSX_MEDIA_TYPE}; use format=csv|xlsx`)
}

/** `leads-2026-11-27.xlsx`: the resource and the UTC day of the export. */
export function exportFilename(resource: string, format: ExportFormat, now = new Date()): string {
  return `${resource}-${now.toISOString().slice(0, 10)}.${format}`
}

export interface ExportOutcome {
  rows: number
  /** false when the client went away, or reading failed, before the last row. */
  completed: boolean
}

/** Called once, before the last bytes leave (so the client never sees the end before it), or when abandoned. */
export type ExportFinish = (outcome: ExportOutcome) => Promise<void>

/** Streams the batches as CSV or XLSX, reading the next batch only once the client has taken the last. */
export function spreadsheetStream<Row>(
  format: ExportFormat,
  columns: ExportColumn<Row>[],
  batches: AsyncGenerator<Row[]>,
  finish: ExportFinish,
): Readable {
  return format === 'csv' ? csvStream(columns, batches, finish) : xlsxStream(columns, batches, finish)
}

function textCell(value: CellValue): string {
  if (value === null) return ''
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'number') return String(value)
  return neutraliseFormula(value)
}

function csvStream<Row>(columns: ExportColumn<Row>[], batches: AsyncGenerator<Row[]>, finish: ExportFinish): Readable {
  // With a record delimiter of its own, csv-stringify quotes a cell holding CRLF but not one holding
  // a lone CR or LF, which a reader then takes for a new row; `;` is the separator of Excel in
  // Spanish and other locales. Every cell holding one of these, `,` or `"` is quoted.
  const options = { record_delimiter: 'windows', quoted_match: /[\r\n,;"]/ } as const
  async function* lines(): AsyncGenerator<string> {
    let rows = 0
    let finished = false
    try {
      // The BOM tells Excel the file is UTF-8, so accents show as written.
      yield `\uFEFF${stringify([columns.map((column) => column.header)], options)}`
      for await (const batch of batches) {
        yield stringify(
          batch.map((row) => columns.map((column) => textCell(column.value(row)))),
          options,
        )
        rows += batch.length
      }
      finished = true
      await finish({ rows, completed: true })
    } finally {
      // Also reached when the stream is destroyed (the client went away): the batches stop here.
      await batches.return(undefined)
      if (!finished) await finish({ rows, completed: false }).catch(() => {})
    }
  }
  return Readable.from(lines(), { objectMode: false })
}

function xlsxStream<Row>(columns: ExportColumn<Row>[], batches: AsyncGenerator<Row[]>, finish: ExportFinish): Readable {
  const output = new PassThrough()
  let gone = false
  output.once('close', () => {
    gone = true
  })
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({
    stream: output,
    useStyles: true,
    useSharedStrings: false,
    // Fast compression: the export is bound by deflate, and a level-1 file is only a little larger.
    zip: { zlib: { level: 1 } },
  })
  const sheet = workbook.addWorksheet('export', { views: [{ state: 'frozen', ySplit: 1 }] })
  sheet.columns = columns.map((column) => ({ header: column.header, key: column.header, width: column.width ?? 14 }))
  sheet.getRow(1).font = { bold: true }

  const write = async (): Promise<void> => {
    let rows = 0
    let finished = false
    try {
      for await (const batch of batches) {
        for (const row of batch) {
          const values = columns.map((column) => {
            const value = column.value(row)
            return typeof value === 'string' ? neutraliseFormula(value) : value
          })
          const added = sheet.addRow(values)
          values.forEach((value, index) => {
            if (value instanceof Date) added.getCell(index + 1).numFmt = 'yyyy-mm-dd hh:mm:ss'
          })
          added.commit()
        }
        rows += batch.length
        if (gone) return
        // Backpressure: the next batch waits until the client has taken what is already written.
        if (output.writableNeedDrain) await Promise.race([once(output, 'drain'), once(output, 'close')])
        if (gone) return
      }
      finished = true
      await finish({ rows, completed: true })
      sheet.commit()
      await workbook.commit()
    } finally {
      await batches.return(undefined)
      if (!finished) await finish({ rows, completed: false }).catch(() => {})
    }
  }
  write().catch((error) => output.destroy(error))
  return output
}
