import { pipeline, Readable } from 'node:stream'
import { CsvError, parse } from 'csv-parse'
import ExcelJS from 'exceljs'
import { DomainError, ValidationError } from '../errors/domain.js'
import { restoreNeutralised } from './cells.js'

export type SheetFormat = 'csv' | 'xlsx'

/** One line of the sheet: its number as the spreadsheet shows it (the header is row 1), and its cells. */
export interface SheetRow {
  row: number
  cells: string[]
}

export const MAX_IMPORT_ROWS = 100_000

/**
 * The rows of a CSV or XLSX file read as a stream, header first, cells as trimmed text, blank
 * rows skipped (they keep their number). More than MAX_IMPORT_ROWS data rows is a 413.
 */
export async function* readSheet(input: Readable, format: SheetFormat): AsyncGenerator<SheetRow> {
  const rows = format === 'csv' ? csvRows(input) : xlsxRows(input)
  let dataRows = -1
  for await (const row of rows) {
    if (row.cells.every((cell) => cell === '')) continue
    dataRows += 1
    if (dataRows > MAX_IMPORT_ROWS) {
      throw new DomainError(
        413,
        'too_many_rows',
        `The file has more than ${MAX_IMPORT_ROWS.toLocaleString('en')} rows, the limit of one import`,
      )
    }
    yield row
  }
}

/** The delimiter of the header line: Excel writes `;` where the decimal separator is a comma. */
function detectDelimiter(head: string): string {
  const line = head.split(/\r?\n/, 1)[0] ?? ''
  const counts = [',', ';', '\t'].map((delimiter) => [delimiter, line.split(delimiter).length] as const)
  return counts.reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0]
}

async function* csvRows(input: Readable): AsyncGenerator<SheetRow> {
  const chunks = input[Symbol.asyncIterator]()
  let head = Buffer.alloc(0)
  while (!head.includes(10) && head.length < 65_536) {
    const next = await chunks.next()
    if (next.done) break
    head = Buffer.concat([head, Buffer.from(next.value as Buffer)])
  }
  const rest = async function* () {
    yield head
    for (;;) {
      const next = await chunks.next()
      if (next.done) return
      yield next.value as Buffer
    }
  }
  const parser = parse({
    bom: true,
    delimiter: detectDelimiter(head.toString('utf8')),
    relax_column_count: true,
    skip_empty_lines: false,
  })
  // pipeline hands a failure of the upload (a 413) to the parser, which our loop then throws.
  pipeline(Readable.from(rest()), parser, () => {})
  let row = 0
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      row += 1
      yield { row, cells: record.map((cell) => restoreNeutralised(cell.trim())) }
    }
  } catch (error) {
    if (!(error instanceof CsvError)) throw error
    // csv-parse's message quotes the cell: the answer and the log say what is wrong, not what was written.
    // The records before it as the parser counts them: the rows this loop has taken may lag behind.
    const failedRow = (typeof error.records === 'number' ? error.records : row) + 1
    throw ValidationError.field(
      'file',
      `is not a readable CSV file: row ${failedRow} ${CSV_PROBLEMS[error.code] ?? 'is malformed'}`,
    )
  }
}

const CSV_PROBLEMS: Record<string, string> = {
  INVALID_OPENING_QUOTE:
    'has a double quote inside a field that does not start with one (enclose the field in double quotes and double each quote inside it)',
  CSV_INVALID_CLOSING_QUOTE: 'has text right after the closing quote of a field',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'has text right after the closing quote of a field',
  CSV_QUOTE_NOT_CLOSED: 'opens a quoted field that is never closed',
  CSV_MAX_RECORD_SIZE: 'is too long',
}

type XlsxValue = ExcelJS.CellValue

function xlsxText(value: XlsxValue): string {
  if (value === null || value === undefined) return ''
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'object') {
    if ('richText' in value) return value.richText.map((part) => part.text).join('')
    if ('text' in value) return xlsxText(value.text as XlsxValue)
    if ('result' in value) return xlsxText(value.result as XlsxValue)
    if ('error' in value) return ''
    return ''
  }
  return String(value)
}

/** The first worksheet's rows. */
async function* xlsxRows(input: Readable): AsyncGenerator<SheetRow> {
  const workbook = new ExcelJS.stream.xlsx.WorkbookReader(input, {
    sharedStrings: 'cache',
    hyperlinks: 'ignore',
    // Styles tell which numbers are dates.
    styles: 'cache',
    worksheets: 'emit',
    entries: 'emit',
  })
  try {
    for await (const worksheet of workbook) {
      for await (const row of worksheet as AsyncIterable<ExcelJS.Row>) {
        const values = row.values as XlsxValue[]
        const cells: string[] = []
        for (let index = 1; index < values.length; index++) {
          cells.push(restoreNeutralised(xlsxText(values[index]).trim()))
        }
        yield { row: row.number, cells }
      }
      return
    }
  } catch (error) {
    if (error instanceof DomainError) throw error
    throw ValidationError.field('file', `is not a readable XLSX file (${(error as Error).message})`)
  }
  throw ValidationError.field('file', 'has no worksheet')
}
