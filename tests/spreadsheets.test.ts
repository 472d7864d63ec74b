import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { parse } from 'csv-parse/sync'
import ExcelJS from 'exceljs'
import { sql } from 'kysely'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import { importClients } from '../src/spreadsheets/client-import.js'
import { ROWS_PER_LOOKUP, ROWS_PER_WRITE } from '../src/spreadsheets/imports.js'
import { importLeads } from '../src/spreadsheets/lead-import.js'
import type { SheetRow } from '../src/spreadsheets/reader.js'
import { problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
const LEAD_HEADER = [
  'id',
  'status',
  'channel',
  'client_id',
  'client_name',
  'client_company',
  'client_phone',
  'assigned_to',
  'assignee_username',
  'admin_notes',
  'sales_notes',
  'created_by',
  'created_at',
  'updated_at',
  'status_changed_at',
  'amount',
  'currency',
  'expected_close_date',
  'lost_reason',
]
const INJECTION = '=HYPERLINK("http://x")'
const today = () => new Date().toISOString().slice(0, 10)

/** A multipart/form-data body with one file field. */
function multipart(field: string, filename: string, type: string, content: Buffer) {
  const boundary = `----crm${Date.now()}`
  const payload = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`,
    ),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ])
  return { payload, contentType: `multipart/form-data; boundary=${boundary}` }
}

describe('spreadsheets', () => {
  let ctx: TestContext
  let sales: TestUser
  let otherSales: TestUser
  let management: TestUser
  let existingClientId: number

  const get = (token: string, url: string, headers: Record<string, string> = {}) =>
    ctx.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers } })
  const upload = (token: string, url: string, type: string, payload: string | Buffer | Readable) =>
    ctx.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}`, 'content-type': type }, payload })
  const exportRows = (ctx: TestContext, table: string) =>
    ctx.db
      .selectFrom('audit_logs')
      .selectAll()
      .where('action', '=', 'export')
      .where('table_name', '=', table as never)
      .orderBy('id')
      .execute()
  const count = async (table: 'clients' | 'leads' | 'audit_logs') =>
    Number((await ctx.db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n)

  before(async () => {
    ctx = await startTestContext()
    sales = await ctx.createUser('sales')
    otherSales = await ctx.createUser('sales')
    management = await ctx.createUser('management')
    const clients = [
      { contact_name: 'Juan Pérez', phone: '+584123456789' },
      { contact_name: INJECTION, phone: '+584241112233', client_type: 'juridical', company_name: '@SUM(1+1)' },
      { contact_name: 'Ñandú Gómez', phone: '+584161234567', email: 'nandu@example.com' },
    ]
    const ids: number[] = []
    for (const client of clients) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/clients', client)
      assert.equal(response.statusCode, 201, response.body)
      ids.push(response.json().id)
    }
    existingClientId = ids[0] as number
    const leads = [
      { client_id: ids[0], channel: 'web', assigned_to: sales.id, sales_notes: 'Llamar el lunes' },
      { client_id: ids[1], channel: 'whatsapp', assigned_to: sales.id, admin_notes: '-1 descuento' },
      { client_id: ids[2], channel: 'manual', assigned_to: otherSales.id },
      { client_id: ids[2], channel: 'instagram' },
    ]
    for (const lead of leads) {
      const response = await ctx.as(ctx.adminToken, 'POST', '/leads', lead)
      assert.equal(response.statusCode, 201, response.body)
    }
  })
  after(() => ctx?.close())

  describe('exports', () => {
    it('writes a CSV with a BOM, the documented header, one row per lead, and an audit row', async () => {
      const response = await get(ctx.adminToken, '/leads/export?format=csv&sort=created_at')
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['content-type'], 'text/csv; charset=utf-8')
      assert.equal(response.headers['content-disposition'], `attachment; filename="leads-${today()}.csv"`)
      assert.ok(response.rawPayload.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])), 'UTF-8 BOM')
      const records = parse(response.rawPayload, { bom: true }) as string[][]
      assert.deepEqual(records[0], LEAD_HEADER)
      const rows = records.slice(1)
      assert.equal(rows.length, 4)
      const byName = new Map(rows.map((row) => [row[4], row]))
      const juan = byName.get('Juan Pérez')
      assert.ok(juan, 'accents survive')
      assert.equal(juan[6], "'+584123456789", 'a phone starting with + is not read as a formula')
      assert.equal(juan[8], sales.username)
      assert.equal(juan[10], 'Llamar el lunes')
      assert.match(juan[12] ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
      // The injected name comes out as text, as do the other dangerous starts.
      const injected = byName.get(`'${INJECTION}`)
      assert.ok(injected, `the formula is neutralised: ${[...byName.keys()].join(' | ')}`)
      assert.equal(injected[5], "'@SUM(1+1)")
      assert.equal(injected[9], "'-1 descuento")
      const audits = await exportRows(ctx, 'leads')
      assert.equal(audits.length, 1)
      assert.equal(audits[0]?.record_id, null)
      assert.equal(audits[0]?.user_id, 1)
      assert.deepEqual(audits[0]?.new_values, {
        format: 'csv',
        filters: { sort: 'created_at' },
        row_count: 4,
        completed: true,
      })
    })

    it('writes the same rows as XLSX with typed cells and a frozen header', async () => {
      const csv = parse((await get(ctx.adminToken, '/leads/export?format=csv')).rawPayload, { bom: true }) as string[][]
      const response = await get(ctx.adminToken, '/leads/export', { accept: XLSX })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['content-type'], XLSX)
      assert.equal(response.headers['content-disposition'], `attachment; filename="leads-${today()}.xlsx"`)
      const workbook = new ExcelJS.Workbook()
      await workbook.xlsx.load(response.rawPayload as unknown as ArrayBuffer)
      const sheet = workbook.worksheets[0]
      assert.ok(sheet)
      assert.equal(sheet.views[0]?.state, 'frozen')
      assert.equal((sheet.views[0] as { ySplit?: number }).ySplit, 1)
      const rows: unknown[][] = []
      sheet.eachRow((row) => rows.push((row.values as unknown[]).slice(1)))
      assert.deepEqual(rows[0], LEAD_HEADER)
      assert.equal(rows.length, csv.length)
      for (const [index, row] of rows.slice(1).entries()) {
        const csvRow = csv[index + 1] as string[]
        assert.equal(typeof row[0], 'number', 'ids are numbers')
        assert.ok(row[12] instanceof Date, 'created_at is a date')
        assert.equal((row[12] as Date).toISOString(), csvRow[12])
        assert.equal(row[0], Number(csvRow[0]))
        assert.equal(row[4], csvRow[4])
      }
      const injectedRow = sheet
        .getRows(2, rows.length - 1)
        ?.find((row) => String(row.getCell(5).value).includes('HYPERLINK'))
      assert.ok(injectedRow)
      assert.equal(injectedRow.getCell(5).type, ExcelJS.ValueType.String, 'a string cell, never a formula')
      assert.equal(injectedRow.getCell(5).value, `'${INJECTION}`)
      const audits = await exportRows(ctx, 'leads')
      assert.equal((audits.at(-1)?.new_values as { format?: string } | undefined)?.format, 'xlsx')
    })

    it("gives a sales user only their leads, with the list's filters", async () => {
      const mine = parse((await get(sales.token, '/leads/export')).rawPayload, { bom: true, columns: true }) as Array<
        Record<string, string>
      >
      assert.deepEqual(mine.map((row) => row.assignee_username).sort(), [sales.username, sales.username])
      const filtered = parse((await get(sales.token, '/leads/export?channel=web')).rawPayload, {
        bom: true,
        columns: true,
      }) as Array<Record<string, string>>
      assert.deepEqual(
        filtered.map((row) => row.channel),
        ['web'],
      )
      const unassigned = parse((await get(management.token, '/leads/export?assigned_to=none')).rawPayload, {
        bom: true,
        columns: true,
      }) as Array<Record<string, string>>
      assert.deepEqual(
        unassigned.map((row) => row.assignee_username),
        [''],
      )
    })

    it('exports clients with their filters and answers bad queries before streaming', async () => {
      const response = await get(ctx.adminToken, '/clients/export?client_type=juridical&q=hyperlink')
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['content-disposition'], `attachment; filename="clients-${today()}.csv"`)
      const rows = parse(response.rawPayload, { bom: true, columns: true }) as Array<Record<string, string>>
      assert.deepEqual(
        rows.map((row) => row.contact_name),
        [`'${INJECTION}`],
      )
      const backwards = await get(ctx.adminToken, '/clients/export?created_from=2026-11-27&created_to=2026-11-01')
      assert.equal(backwards.statusCode, 400)
      assert.equal(problemOf(backwards).errors?.[0]?.field, 'created_to')
      const paged = await get(ctx.adminToken, '/clients/export?limit=10')
      assert.equal(paged.statusCode, 400)
      const json = await get(ctx.adminToken, '/clients/export', { accept: 'application/json' })
      assert.equal(json.statusCode, 406)
      assert.equal(problemOf(json).code, 'not_acceptable')
    })

    it('reads every row once across batches, in the order asked, ties broken by id', async () => {
      // 4,500 leads with the same created_at: three batches whose boundaries fall inside one timestamp.
      await sql`insert into leads (client_id, channel, created_at)
        select ${existingClientId}, 'web', timestamptz '2026-01-01 10:00:00.123456+00' from generate_series(1, 4500)`.execute(
        ctx.db,
      )
      for (const sort of ['-created_at', 'created_at']) {
        const response = await get(ctx.adminToken, `/leads/export?sort=${sort}&created_to=2026-01-02`)
        const ids = (parse(response.rawPayload, { bom: true, from_line: 2 }) as string[][]).map((row) => Number(row[0]))
        assert.equal(ids.length, 4500)
        const expected = [...ids].sort((a, b) => (sort.startsWith('-') ? b - a : a - b))
        assert.deepEqual(ids, expected)
        assert.equal(new Set(ids).size, 4500)
      }
      await sql`delete from leads where created_at < '2026-01-02'`.execute(ctx.db)
    })

    it('quotes cells with line breaks or separators and guards every line of a cell against formulas', async () => {
      // A lone LF or CR inside a cell must not start a row, and a formula after it must not run.
      const names = { ana: "Ana\n=cmd|' /C calc'!A0", semicolon: 'a;b', carriage: 'x\r=1+1' }
      const guarded = { ana: "Ana\n'=cmd|' /C calc'!A0", semicolon: 'a;b', carriage: "x\r'=1+1" }
      for (const [index, name] of Object.values(names).entries()) {
        const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
          contact_name: name,
          phone: `+58426000000${index}`,
        })
        assert.equal(client.statusCode, 201, client.body)
        const lead = await ctx.as(ctx.adminToken, 'POST', '/leads', {
          client_id: client.json().id,
          channel: 'web',
          sales_notes: `nota\n@SUM(1)\r\n-${index}`,
        })
        assert.equal(lead.statusCode, 201, lead.body)
      }
      /** No line a spreadsheet could see, in a cell or in the file, starts a formula. */
      const assertNoFormulaLine = (text: string, where: string) => {
        for (const line of text.split(/\r\n|\r|\n/)) assert.doesNotMatch(line, /^[=+\-@\t]/, `${where}: ${line}`)
      }
      for (const [table, nameColumn] of [
        ['clients', 'contact_name'],
        ['leads', 'client_name'],
      ] as const) {
        const response = await get(ctx.adminToken, `/${table}/export?format=csv`)
        assert.equal(response.statusCode, 200, response.body)
        const text = response.rawPayload.toString('utf8')
        assertNoFormulaLine(text, `${table} file`)
        assert.match(text, /,"a;b",/, 'a cell with ; is quoted')
        const records = parse(response.rawPayload, { bom: true, columns: true }) as Array<Record<string, string>>
        assert.equal(records.length, await count(table), `${table}: one record per row`)
        const byName = new Map(records.map((record) => [record[nameColumn], record]))
        for (const name of Object.values(guarded)) assert.ok(byName.has(name), `${table}: ${JSON.stringify(name)}`)
        for (const record of records) {
          for (const [column, value] of Object.entries(record)) assertNoFormulaLine(value, `${table}.${column}`)
        }
        if (table === 'leads') {
          assert.equal(byName.get(guarded.carriage)?.sales_notes, "nota\n'@SUM(1)\r\n'-2")
        }
      }
      // An XLSX cell holds its line breaks itself; the text is still a string, never a formula.
      const response = await get(ctx.adminToken, '/clients/export?format=xlsx')
      const workbook = new ExcelJS.Workbook()
      await workbook.xlsx.load(response.rawPayload as unknown as ArrayBuffer)
      const cells = new Map<unknown, ExcelJS.Cell>()
      workbook.worksheets[0]?.eachRow((row) => cells.set(row.getCell(3).value, row.getCell(3)))
      for (const name of Object.values(guarded)) {
        // An XML reader takes a CR in the text for a LF (XML's end-of-line handling).
        const cell = cells.get(name.replace(/\r/g, '\n'))
        assert.ok(cell, JSON.stringify(name))
        assert.equal(cell.type, ExcelJS.ValueType.String, 'a string cell, never a formula')
        assert.equal(cell.formula, undefined)
      }
    })
  })

  describe('client imports', () => {
    // Excel in Spanish writes `;`; phones in four spellings, one invalid, one repeated, one existing.
    const file = [
      'Nombre;Teléfono;Correo;Empresa;Tipo',
      'Ana Gómez;+58 414-111 2233;ana@example.com;;natural',
      'Luis Díaz;00584141112244;;;',
      'María Núñez;0414 1112255;;Núñez C.A.;jurídica',
      'Pedro Rojas;(0414) 111-2266;;;',
      'Sin Teléfono;12345;;;',
      'Ana otra vez;0414-1112233;;;',
      'Juan Pérez;0412-3456789;juan.nuevo@example.com;;',
    ].join('\r\n')
    const importing = (query: string, body = file, token = ctx.adminToken) =>
      upload(token, `/clients/import${query}`, 'text/csv', `\uFEFF${body}`)
    const expectedErrors = (existing: boolean) => [
      { row: 6, field: 'Teléfono' },
      { row: 7, field: 'Teléfono' },
      ...(existing ? [{ row: 8, field: 'Teléfono' }] : []),
    ]

    it('reports every problem by row in a dry run and writes nothing', async () => {
      const before = { clients: await count('clients'), audit: await count('audit_logs') }
      const response = await importing('?dry_run=true')
      assert.equal(response.statusCode, 200, response.body)
      const result = response.json()
      assert.deepEqual(
        { created: result.created, updated: result.updated, unchanged: result.unchanged, failed: result.failed },
        { created: 4, updated: 0, unchanged: 0, failed: 3 },
      )
      assert.deepEqual(
        result.errors.map((error: { row: number; field: string }) => ({ row: error.row, field: error.field })),
        expectedErrors(true),
      )
      assert.match(result.errors[0].message, /too short|not a valid/)
      assert.match(result.errors[1].message, /row 2/)
      assert.match(result.errors[2].message, new RegExp(`client ${existingClientId} already has phone`))
      assert.deepEqual({ clients: await count('clients'), audit: await count('audit_logs') }, before)
    })

    it('refuses the whole file in create mode when a row fails', async () => {
      const before = { clients: await count('clients'), audit: await count('audit_logs') }
      const response = await importing('')
      assert.equal(response.statusCode, 422, response.body)
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
      const body = problemOf(response)
      assert.equal(body.code, 'import_failed')
      assert.equal(body.created, 0)
      assert.equal(body.failed, 3)
      assert.deepEqual({ clients: await count('clients'), audit: await count('audit_logs') }, before)
    })

    it('writes the good rows with partial=true, each with its audit row', async () => {
      const response = await importing('?partial=true')
      assert.equal(response.statusCode, 200, response.body)
      assert.deepEqual(
        { ...(response.json() as object), errors: undefined },
        { created: 4, updated: 0, unchanged: 0, failed: 3, errors: undefined },
      )
      const created = await ctx.db
        .selectFrom('clients')
        .select(['id', 'contact_name', 'phone', 'client_type', 'company_name', 'email', 'created_by'])
        .where('phone', 'in', ['+584141112233', '+584141112244', '+584141112255', '+584141112266'])
        .orderBy('phone')
        .execute()
      assert.deepEqual(
        created.map((client) => [client.contact_name, client.phone, client.client_type, client.email]),
        [
          ['Ana Gómez', '+584141112233', 'natural', 'ana@example.com'],
          ['Luis Díaz', '+584141112244', 'natural', null],
          ['María Núñez', '+584141112255', 'juridical', null],
          ['Pedro Rojas', '+584141112266', 'natural', null],
        ],
      )
      for (const client of created) {
        const rows = await ctx.auditRows('clients', client.id)
        assert.equal(rows.length, 1)
        assert.equal(rows[0]?.action, 'create')
        assert.equal(rows[0]?.username, 'admin')
      }
      // Each client written publishes its event, as POST /clients does.
      const events = await ctx.db
        .selectFrom('events')
        .select(['type', 'resource_key'])
        .where(
          'resource_key',
          'in',
          created.map((client) => `client:${client.id}`),
        )
        .execute()
      assert.deepEqual(
        events.map((event) => event.type),
        created.map(() => 'client.created'),
      )
    })

    it('updates the existing client in upsert mode, then reports the same file unchanged', async () => {
      const response = await importing('?mode=upsert&partial=true')
      assert.equal(response.statusCode, 200, response.body)
      const first = response.json()
      assert.deepEqual(
        { created: first.created, updated: first.updated, unchanged: first.unchanged, failed: first.failed },
        { created: 0, updated: 1, unchanged: 4, failed: 2 },
      )
      assert.deepEqual(
        first.errors.map((error: { row: number; field: string }) => ({ row: error.row, field: error.field })),
        expectedErrors(false),
      )
      const juan = await ctx.as(ctx.adminToken, 'GET', `/clients/${existingClientId}`)
      assert.equal(juan.json().email, 'juan.nuevo@example.com')
      const updates = (await ctx.auditRows('clients', existingClientId)).filter((row) => row.action === 'update')
      assert.deepEqual(updates.at(-1)?.new_values, { email: 'juan.nuevo@example.com' })

      const auditBefore = await count('audit_logs')
      const again = (await importing('?mode=upsert&partial=true')).json()
      assert.deepEqual(
        { created: again.created, updated: again.updated, unchanged: again.unchanged, failed: again.failed },
        { created: 0, updated: 0, unchanged: 5, failed: 2 },
      )
      assert.equal(await count('audit_logs'), auditBefore)
    })

    it('takes an XLSX file as the multipart field "file", English headers and numbers as phones', async () => {
      const workbook = new ExcelJS.Workbook()
      const sheet = workbook.addWorksheet('Clientes')
      sheet.addRow(['contact_name', 'phone', 'email', 'address'])
      sheet.addRow(['Carla Ruiz', 4241234001, 'CARLA@example.com', 'Calle 1'])
      sheet.addRow(['Carla Ruiz', '0424-1234002', null, { richText: [{ text: 'Av. ' }, { text: 'Bolívar' }] }])
      const { payload, contentType } = multipart(
        'file',
        'clientes.xlsx',
        XLSX,
        Buffer.from(await workbook.xlsx.writeBuffer()),
      )
      const response = await upload(management.token, '/clients/import', contentType, payload)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.json().created, 2)
      const carla = await ctx.as(management.token, 'GET', '/clients/by-phone/04241234001')
      assert.equal(carla.json().email, 'carla@example.com')
      const other = await ctx.as(management.token, 'GET', '/clients/by-phone/04241234002')
      assert.equal(other.json().address, 'Av. Bolívar')
    })

    it('imports its own export back unchanged', async () => {
      const exported = (await get(ctx.adminToken, '/clients/export')).rawPayload
      const response = await upload(ctx.adminToken, '/clients/import?mode=upsert', 'text/csv', exported)
      assert.equal(response.statusCode, 200, response.body)
      const result = response.json()
      assert.equal(result.failed, 0, JSON.stringify(result.errors))
      assert.equal(result.unchanged, await count('clients'))
    })

    it('refuses sales users, a file without a phone column, and other content types', async () => {
      const forbidden = await importing('', file, sales.token)
      assert.equal(forbidden.statusCode, 403)
      const noPhone = await upload(ctx.adminToken, '/clients/import', 'text/csv', 'nombre,correo\nAna,a@example.com\n')
      assert.equal(noPhone.statusCode, 400)
      assert.equal(problemOf(noPhone).errors?.[0]?.field, 'file')
      assert.match(problemOf(noPhone).errors?.[0]?.message ?? '', /no column for phone/)
      const json = await ctx.as(ctx.adminToken, 'POST', '/clients/import', { phone: '1' })
      assert.equal(json.statusCode, 415)
      const wrongField = multipart('upload', 'a.csv', 'text/csv', Buffer.from('phone\n04141112233\n'))
      const missing = await upload(ctx.adminToken, '/clients/import', wrongField.contentType, wrongField.payload)
      assert.equal(missing.statusCode, 400)
      assert.equal(problemOf(missing).errors?.[0]?.field, 'file')
    })

    it('answers 400 naming the file to an XLSX that is no zip archive', async () => {
      const broken = await upload(
        ctx.adminToken,
        '/clients/import',
        XLSX,
        Buffer.from('PK\u0003\u0004 not really a zip'),
      )
      assert.equal(broken.statusCode, 400, broken.body)
      assert.equal(problemOf(broken).errors?.[0]?.field, 'file')
      assert.match(problemOf(broken).errors?.[0]?.message ?? '', /not a readable XLSX file/)
    })

    it('answers 413 naming the limit past 100,000 rows or 50 MB, writing nothing', async () => {
      const before = await count('clients')
      const rows = Readable.from(
        (function* () {
          yield 'contact_name,phone\n'
          for (let index = 0; index <= 100_000; index += 1000) yield 'X,not a phone\n'.repeat(1000)
        })(),
      )
      const tooMany = await upload(ctx.adminToken, '/clients/import?partial=true', 'text/csv', rows)
      assert.equal(tooMany.statusCode, 413, tooMany.body)
      assert.equal(problemOf(tooMany).code, 'too_many_rows')
      assert.match(problemOf(tooMany).detail, /100,000 rows/)

      // curl and browsers send Content-Length: a larger file is refused before a byte of it is read.
      const big = Buffer.alloc(50 * 1024 * 1024 + 1, 'x')
      const tooLarge = await upload(ctx.adminToken, '/clients/import', 'text/csv', big)
      assert.equal(tooLarge.statusCode, 413, tooLarge.body)
      assert.equal(problemOf(tooLarge).code, 'file_too_large')
      assert.match(problemOf(tooLarge).detail, /50 MB/)
      assert.equal(await count('clients'), before)
    })
  })

  describe('lead imports', () => {
    it('creates missing clients by phone and refuses an unknown assignee by row', async () => {
      const file = [
        'telefono,nombre,canal,estado,asignado,notas',
        `0412-3456789,,whatsapp,contactado,${sales.username},Pidió precios`,
        `0426-5550001,Rosa Lima,web,,${otherSales.username},`,
        '0426-5550002,Nadie Asignado,web,,fulano.de.tal,',
        '0426-5550003,,web,,,',
      ].join('\n')
      const clientsBefore = await count('clients')
      const dry = await upload(ctx.adminToken, '/leads/import?dry_run=true&partial=true', 'text/csv', file)
      assert.equal(dry.statusCode, 200, dry.body)
      assert.equal(await count('clients'), clientsBefore)

      const response = await upload(ctx.adminToken, '/leads/import?partial=true', 'text/csv', file)
      assert.equal(response.statusCode, 200, response.body)
      const result = response.json()
      assert.deepEqual(dry.json(), result)
      assert.deepEqual(
        { created: result.created, clients_created: result.clients_created, failed: result.failed },
        { created: 2, clients_created: 1, failed: 2 },
      )
      assert.deepEqual(
        result.errors.map((error: { row: number; field: string }) => [error.row, error.field]),
        [
          [4, 'asignado'],
          [5, 'nombre'],
        ],
      )
      assert.match(result.errors[0].message, /fulano\.de\.tal/)
      const rosa = (await ctx.as(ctx.adminToken, 'GET', '/clients/by-phone/04265550001')).json()
      assert.equal(rosa.contact_name, 'Rosa Lima')
      assert.equal((await ctx.auditRows('clients', rosa.id)).length, 1)
      const rosaLeads = (await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${rosa.id}`)).json().items
      assert.equal(rosaLeads.length, 1)
      assert.equal(rosaLeads[0].assigned_to, otherSales.id)
      const rosaEvents = await ctx.db
        .selectFrom('events')
        .select('type')
        .where('resource_key', 'in', [`client:${rosa.id}`, `lead:${rosaLeads[0].id}`])
        .orderBy('id')
        .execute()
      assert.deepEqual(
        rosaEvents.map((event) => event.type),
        ['client.created', 'lead.created'],
      )
      assert.equal(rosaLeads[0].channel, 'web')
      const juanLeads = (
        await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${existingClientId}&channel=whatsapp`)
      ).json().items
      assert.equal(juanLeads.length, 1)
      assert.equal(juanLeads[0].status, 'contacted')
      assert.equal(juanLeads[0].sales_notes, 'Pidió precios')
      assert.equal((await ctx.auditRows('leads', juanLeads[0].id)).length, 1)
      assert.equal(await count('clients'), clientsBefore + 1)

      const create = await upload(ctx.adminToken, '/leads/import?partial=true', 'text/csv', file)
      assert.equal(create.json().created, 0, 'create mode refuses leads that exist')
      const again = await upload(ctx.adminToken, '/leads/import?mode=upsert&partial=true', 'text/csv', file)
      assert.deepEqual(
        { ...(again.json() as object), errors: undefined },
        { created: 0, updated: 0, unchanged: 2, failed: 2, clients_created: 0, errors: undefined },
      )
    })

    it('updates a lead in upsert mode by the rules of its status', async () => {
      const file = ['phone,channel,status,sales_notes', '0412-3456789,whatsapp,quoted,Cotización enviada'].join('\n')
      const response = await upload(ctx.adminToken, '/leads/import?mode=upsert', 'text/csv', file)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.json().updated, 1)
      const lead = (await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${existingClientId}&channel=whatsapp`)).json()
        .items[0]
      assert.equal(lead.status, 'quoted')
      const audit = (await ctx.auditRows('leads', lead.id)).at(-1)
      assert.deepEqual(audit?.new_values, { status: 'quoted', sales_notes: 'Cotización enviada' })
      const back = ['phone,channel,status', '0412-3456789,whatsapp,new'].join('\n')
      const refused = await upload(ctx.adminToken, '/leads/import?mode=upsert', 'text/csv', back)
      assert.equal(refused.statusCode, 422)
      assert.deepEqual(problemOf(refused).errors, [
        { row: 2, field: 'status', message: 'A quoted lead cannot become new (allowed: contacted, closed, discarded)' },
      ])

      // A row that moves the status and the assignee at once publishes both events, as the two routes do.
      const eventsBefore = await ctx.db.selectFrom('events').select('id').orderBy('id', 'desc').executeTakeFirst()
      const both = ['phone,channel,status,assignee_username', `0412-3456789,whatsapp,contacted,${otherSales.username}`]
      const moved = await upload(ctx.adminToken, '/leads/import?mode=upsert', 'text/csv', both.join('\n'))
      assert.equal(moved.statusCode, 200, moved.body)
      const events = await ctx.db
        .selectFrom('events')
        .select(['type', 'data'])
        .where('resource_key', '=', `lead:${lead.id}`)
        .where('id', '>', eventsBefore?.id ?? 0)
        .orderBy('id')
        .execute()
      assert.deepEqual(
        events.map((event) => event.type),
        ['lead.status_changed', 'lead.assigned'],
      )
      const assigned = (typeof events[1]?.data === 'string' ? JSON.parse(events[1].data) : events[1]?.data) as {
        new: unknown
      }
      assert.deepEqual(assigned.new, { assigned_to: otherSales.id })
    })
  })

  describe('imports written in batches', () => {
    // Rows of valid fields: what the routes' field check would pass.
    const rules = { defaultPhoneRegion: 'VE' as const, checkClientFields: () => [] }
    const admin = (): AuthenticatedActor => ({ userId: 1, username: 'admin', role: 'admin', requestId: null })
    /**
     * The rows of a file, then a lookup's worth of rows without a phone (failed rows), so that the
     * import has planned the first ones when `meanwhile` (a concurrent change) runs, before it writes.
     */
    async function* sheet(lines: string[][], meanwhile: () => Promise<unknown>): AsyncGenerator<SheetRow> {
      for (const [index, cells] of lines.entries()) yield { row: index + 1, cells }
      // One more than the first lookup takes; few enough that the row errors are all reported.
      const padding = ROWS_PER_LOOKUP - (lines.length - 1) + 1
      for (let index = 0; index < padding; index++) yield { row: lines.length + index + 1, cells: [] }
      await meanwhile()
    }
    const ownErrors = (result: { errors: Array<{ row: number; field: string; message: string }> }, rows: number) =>
      result.errors.filter((error) => error.row <= rows)

    it('writes nothing of a file longer than one batch when its last row fails, and all good rows with partial', async () => {
      const rows = Array.from(
        { length: ROWS_PER_WRITE * 2 + 10 },
        (_, index) => `Lote ${index},0416${String(7000000 + index)}`,
      )
      const file = ['nombre,telefono', ...rows, 'Mala,123'].join('\n')
      const before = { clients: await count('clients'), audit: await count('audit_logs') }
      const refused = await upload(ctx.adminToken, '/clients/import', 'text/csv', file)
      assert.equal(refused.statusCode, 422, refused.body)
      assert.deepEqual({ clients: await count('clients'), audit: await count('audit_logs') }, before)
      const kept = await upload(ctx.adminToken, '/clients/import?partial=true', 'text/csv', file)
      assert.equal(kept.statusCode, 200, kept.body)
      assert.deepEqual([kept.json().created, kept.json().failed], [rows.length, 1])
      assert.equal(await count('clients'), before.clients + rows.length)
      const audits = await ctx.db
        .selectFrom('audit_logs')
        .select(sql<number>`count(*)`.as('n'))
        .where('table_name', '=', 'clients')
        .where('action', '=', 'create')
        .where('id', '>', 0)
        .executeTakeFirstOrThrow()
      assert.ok(Number(audits.n) >= rows.length)
    })

    it('reports a row as failed when a concurrent change meets it, keeping the rest of its batch', async () => {
      const phones = ['04167100001', '04167100002', '04167100003']
      const result = await importClients(
        ctx.db,
        admin(),
        sheet(
          [['nombre', 'telefono'], ...phones.map((phone, index) => [`Carrera ${index}`, phone])],
          // Another request takes the second phone after the plan saw it free.
          () => ctx.as(ctx.adminToken, 'POST', '/clients', { contact_name: 'Otro', phone: phones[1] }),
        ),
        { dryRun: false, mode: 'create', partial: true },
        rules,
      )
      const errors = ownErrors(result, 4)
      assert.deepEqual([result.created, errors.length], [2, 1])
      assert.deepEqual(errors[0] && [errors[0].row, errors[0].field], [3, 'telefono'])
      assert.match(errors[0]?.message ?? '', /created meanwhile/)
      const other = (await ctx.as(ctx.adminToken, 'GET', '/clients/by-phone/04167100002')).json()
      assert.equal(other.contact_name, 'Otro')
    })

    it('fails a lead row whose lead was trashed or moved on meanwhile, and writes the others', async () => {
      const client = (
        await ctx.as(ctx.adminToken, 'POST', '/clients', { contact_name: 'Lía', phone: '04167200001' })
      ).json()
      const lead = async (channel: string) =>
        (await ctx.as(ctx.adminToken, 'POST', '/leads', { client_id: client.id, channel })).json()
      const [trashed, quoted, kept] = [await lead('web'), await lead('whatsapp'), await lead('manual')]
      const result = await importLeads(
        ctx.db,
        admin(),
        sheet(
          [
            ['id', 'phone', 'nombre', 'status', 'sales_notes'],
            [String(trashed.id), '04167200001', '', '', 'nota'],
            [String(quoted.id), '04167200001', '', 'quoted', ''],
            [String(kept.id), '04167200001', '', '', 'sigue'],
            ['', '04167200002', 'Nueva', '', 'nuevo cliente'],
          ],
          async () => {
            await ctx.as(ctx.adminToken, 'DELETE', `/leads/${trashed.id}`)
            await ctx.as(ctx.adminToken, 'PATCH', `/leads/${quoted.id}/status`, { status: 'closed' })
          },
        ),
        { dryRun: false, mode: 'upsert', partial: true },
        rules,
      )
      const errors = ownErrors(result, 5)
      assert.deepEqual(
        errors.map((error) => [error.row, error.field]),
        [
          [2, 'id'],
          [3, 'id'],
        ],
      )
      assert.deepEqual([result.updated, result.created, result.clients_created], [1, 1, 1])
      assert.match(errors[0]?.message ?? '', /not found/)
      assert.match(errors[1]?.message ?? '', /A closed lead cannot become quoted/)
      assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads/${kept.id}`)).json().sales_notes, 'sigue')
      assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads/${quoted.id}`)).json().status, 'closed')
    })
  })
})
