// The product's pure rules, tested without a server or a database.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { dateRange } from '../src/db/dates.js'
import { LEAD_STATUSES, USER_ROLES } from '../src/db/enums.js'
import { columnKey, cursorAfter, cursorValues, parseSort } from '../src/db/paginate.js'
import type { LeadStatus, UserRole } from '../src/db/types.js'
import { ConflictError, type ValidationError } from '../src/errors/domain.js'
import { assertTransition, describeTransitions, LEAD_ACTION_ROLES } from '../src/leads/transitions.js'
import { normalizePhone } from '../src/phone.js'
import { checkClientRows, decideClientRows, type ImportRules } from '../src/spreadsheets/client-import.js'
import { CLIENT_FIELD_ALIASES, LEAD_FIELD_ALIASES, mapColumns } from '../src/spreadsheets/columns.js'
import { Report } from '../src/spreadsheets/imports.js'
import { checkLeadRows, decideLeadRows } from '../src/spreadsheets/lead-import.js'
import { senderPhoneCandidates } from '../src/whatsapp/numbers.js'

/** The contract's table, written out once more by hand: each status, where it may go. */
const CONTRACT: Record<LeadStatus, LeadStatus[]> = {
  new: ['contacted', 'quoted', 'closed', 'discarded'],
  contacted: ['quoted', 'closed', 'discarded'],
  quoted: ['contacted', 'closed', 'discarded'],
  closed: [],
  discarded: [],
}

function allowed(from: LeadStatus, to: LeadStatus, role: UserRole): boolean {
  try {
    assertTransition(from, to, role)
    return true
  } catch (error) {
    assert.ok(error instanceof ConflictError)
    assert.equal(error.code, 'invalid_transition')
    return false
  }
}

describe('lead status transitions', () => {
  it('allow exactly the moves of the contract, and reopening to contacted for admin and management only', () => {
    for (const role of USER_ROLES) {
      for (const from of LEAD_STATUSES) {
        for (const to of LEAD_STATUSES) {
          const reopens = (from === 'closed' || from === 'discarded') && to === 'contacted' && role !== 'sales'
          assert.equal(allowed(from, to, role), CONTRACT[from].includes(to) || reopens, `${role}: ${from} → ${to}`)
        }
      }
    }
  })

  it('list the allowed next states in the refusal', () => {
    assert.throws(
      () => assertTransition('contacted', 'new', 'sales'),
      (error: ConflictError) => {
        assert.deepEqual(error.extra, { current_status: 'contacted', allowed: ['quoted', 'closed', 'discarded'] })
        return true
      },
    )
  })

  it('are described in the document from the same table', () => {
    assert.equal(
      describeTransitions(),
      'new → contacted | quoted | closed | discarded; contacted → quoted | closed | discarded; quoted → contacted | closed | discarded; closed and discarded are final, but admin and management may reopen them to contacted.',
    )
  })

  it('let sales change a status but not assign, delete or restore', () => {
    assert.ok(LEAD_ACTION_ROLES.status.includes('sales' as never))
    for (const action of ['assign', 'delete', 'restore'] as const) {
      assert.deepEqual([...LEAD_ACTION_ROLES[action]], ['admin', 'management'])
    }
  })
})

describe('phone numbers', () => {
  it('read every common written form of one number as the same E.164', () => {
    for (const written of ['+58 412-345 6789', '00584123456789', '0412 3456789', '(0412) 345.67.89']) {
      assert.deepEqual(normalizePhone(written, 'VE'), { ok: true, e164: '+584123456789' }, written)
    }
  })

  it('say why a number is refused', () => {
    assert.deepEqual(normalizePhone('', 'VE'), { ok: false, reason: 'is empty' })
    assert.deepEqual(normalizePhone('0412 ABC 6789', 'VE'), { ok: false, reason: 'must not contain letters' })
    assert.deepEqual(normalizePhone('0412 345', 'VE'), { ok: false, reason: 'is too short' })
    assert.deepEqual(normalizePhone('+58 112 345 6789', 'VE'), {
      ok: false,
      reason: 'is not a valid number for VE (no such number range is in use)',
    })
  })

  it("know the other forms of a WhatsApp sender's line in Brazil, Mexico and Argentina", () => {
    assert.deepEqual(new Set(senderPhoneCandidates('5511987654321')), new Set(['+5511987654321', '+551187654321']))
    assert.deepEqual(new Set(senderPhoneCandidates('5215512345678')), new Set(['+525512345678', '+5215512345678']))
    assert.deepEqual(new Set(senderPhoneCandidates('5491123456789')), new Set(['+5491123456789', '+541123456789']))
    assert.deepEqual(senderPhoneCandidates('584123456789'), ['+584123456789'])
    // The form to create a client with comes first: the one libphonenumber accepts.
    assert.equal(senderPhoneCandidates('551187654321')[0], '+5511987654321')
  })
})

describe('list parameters', () => {
  it('read a sort as a column and a direction', () => {
    assert.deepEqual(parseSort('created_at'), { column: 'created_at', direction: 'asc' })
    assert.deepEqual(parseSort('-updated_at'), { column: 'updated_at', direction: 'desc' })
  })

  it('read a date range as half-open, a date meaning its whole UTC day', () => {
    const fields = { from: 'created_from', to: 'created_to' }
    assert.deepEqual(dateRange(fields, { from: '2026-11-01', to: '2026-11-30' }), {
      from: new Date('2026-11-01T00:00:00Z'),
      before: new Date('2026-12-01T00:00:00Z'),
    })
    assert.deepEqual(dateRange(fields, { to: '2026-11-30T10:00:00Z' }), {
      from: undefined,
      before: new Date('2026-11-30T10:00:00.001Z'),
    })
    assert.throws(
      () => dateRange(fields, { from: '2026-02-30' }),
      (error: ValidationError) => error.errors[0]?.field === 'created_from',
    )
    assert.throws(
      () => dateRange(fields, { from: '2026-12-02', to: '2026-12-01' }),
      (error: ValidationError) => error.errors[0]?.field === 'created_to',
    )
  })
})

describe('the plan of a client import', () => {
  const rules: ImportRules = { defaultPhoneRegion: 'VE', checkClientFields: () => [] }
  const columns = mapColumns(['nombre', 'telefono', 'correo'], CLIENT_FIELD_ALIASES, ['phone'])
  const rows = [
    { row: 2, cells: ['Ana Díaz', '0412-1110001', 'ana@example.com'] },
    { row: 3, cells: ['Ana Díaz', '+58 412 111 0001', ''] },
    { row: 4, cells: ['Sin teléfono', '', ''] },
    { row: 5, cells: ['Luis', 'no es un número', ''] },
    { row: 6, cells: ['Juan Pérez', '04121110002', 'juan@example.com'] },
    { row: 7, cells: ['', '04121110003', ''] },
    { row: 8, cells: ['Marta', '04121110004', ''] },
  ]
  const existing = new Map(
    [
      { id: 10, phone: '+584121110002', contact_name: 'Juan Pérez', email: 'juan@example.com' },
      { id: 11, phone: '+584121110004', contact_name: 'Marta Ruiz', email: null },
    ].map((client) => [client.phone, client as never]),
  )

  it('checks each row as POST /clients would, and refuses a phone an earlier row has', () => {
    const report = new Report()
    const checked = checkClientRows(rows, columns, rules, report, new Map())
    assert.deepEqual(
      checked.map((entry) => [entry.row.row, entry.input.phone]),
      [
        [2, '+584121110001'],
        [6, '+584121110002'],
        [7, '+584121110003'],
        [8, '+584121110004'],
      ],
    )
    assert.deepEqual(
      report.result.errors.map((error) => [error.row, error.field]),
      [
        [3, 'telefono'],
        [4, 'telefono'],
        [5, 'telefono'],
      ],
    )
    assert.match(report.result.errors[0]?.message ?? '', /already in row 2/)
  })

  it('creates the new, updates the changed and leaves the unchanged in upsert mode', () => {
    const report = new Report()
    const planned = decideClientRows(
      checkClientRows(rows, columns, rules, report, new Map()),
      existing,
      columns,
      { mode: 'upsert' },
      report,
    )
    assert.deepEqual(
      planned.map((item) => [item.row, item.kind, item.id]),
      [
        [2, 'created', undefined],
        [8, 'updated', 11],
      ],
    )
    assert.deepEqual([report.result.created, report.result.updated, report.result.unchanged], [1, 1, 1])
    // Row 7 would make a client without a name.
    assert.deepEqual(report.result.errors.at(-1), { row: 7, field: 'nombre', message: 'is required for a new client' })
  })

  it('fails a phone that a client has in create mode', () => {
    const report = new Report()
    const planned = decideClientRows(
      checkClientRows(rows, columns, rules, report, new Map()),
      existing,
      columns,
      { mode: 'create' },
      report,
    )
    assert.deepEqual(
      planned.map((item) => item.row),
      [2],
    )
    assert.ok(
      report.result.errors.some((error) => error.row === 6 && /client 10 already has phone/.test(error.message)),
    )
  })
})

describe('cursors', () => {
  const order = { keys: [columnKey('leads.created_at', 'timestamp')], id: 'leads.id', direction: 'desc' as const }
  const filters = { status: ['new'], sort: '-created_at', limit: 20 }

  it('carry the sort key and the id, for the same filters and sort whatever the page size', () => {
    const cursor = cursorAfter([1_764_000_000_123_456, 42], filters)
    assert.match(cursor, /^[A-Za-z0-9_-]+$/)
    assert.deepEqual(cursorValues(cursor, order, { ...filters, limit: 50 }), [1_764_000_000_123_456, 42])
  })

  it('are refused, naming cursor, with other filters, tampered with, or of the wrong shape', () => {
    const cursor = cursorAfter([1_764_000_000_123_456, 42], filters)
    const refusals = [
      () => cursorValues(cursor, order, { ...filters, status: ['closed'] }),
      () => cursorValues(`${cursor}x`, order, filters),
      () => cursorValues(cursorAfter(['yesterday', 42], filters), order, filters),
      () => cursorValues(cursorAfter([1, 2, 3], filters), order, filters),
      () => cursorValues('x'.repeat(5000), order, filters),
    ]
    for (const refusal of refusals) {
      assert.throws(refusal, (error: ValidationError) => error.errors[0]?.field === 'cursor')
    }
  })
})

describe('the plan of a lead import', () => {
  const rules: ImportRules = { defaultPhoneRegion: 'VE', checkClientFields: () => [] }
  const columns = mapColumns(['id', 'telefono', 'nombre', 'estado', 'asignado'], LEAD_FIELD_ALIASES, ['phone'])
  const rows = [
    { row: 2, cells: ['', '04121110001', 'Ana', '', 'maria'] },
    { row: 3, cells: ['', '0412-111 0001', 'Ana', '', ''] },
    { row: 4, cells: ['7', '04121110002', '', 'closed', ''] },
    { row: 5, cells: ['8', '04121110002', '', 'new', ''] },
    { row: 6, cells: ['', '04121110003', 'Luis', '', 'nadie'] },
    { row: 7, cells: ['99', '04121110002', '', '', ''] },
    { row: 8, cells: ['', '04121110004', '', '', ''] },
    { row: 9, cells: ['9', '04121110002', '', 'quoted', ''] },
  ]
  const lead = (id: number, status: string) =>
    ({
      id,
      client_id: 20,
      channel: 'whatsapp',
      status,
      assigned_to: null,
      admin_notes: null,
      sales_notes: null,
    }) as never
  const known = {
    users: new Map<string, number | null>([
      ['maria', 2],
      ['nadie', null],
    ]),
    clients: new Map([['+584121110002', { id: 20 }]]),
    leads: [lead(7, 'new'), lead(8, 'closed'), lead(9, 'quoted')],
    lostReasons: ['price'],
  }

  it('creates, updates, leaves unchanged and fails each row by the rules of the JSON routes', () => {
    const report = new Report()
    const inputs = checkLeadRows(rows, columns, rules, report, new Map())
    const planned = decideLeadRows(inputs, known, columns, { mode: 'upsert' }, 'admin', report, new Set())
    assert.deepEqual(
      planned.map((item) => [item.row, item.kind, item.id, item.patch]),
      [
        [2, 'created', undefined, { assigned_to: 2 }],
        [4, 'updated', 7, { status: 'closed' }],
      ],
    )
    assert.deepEqual([report.result.created, report.result.updated, report.result.unchanged], [1, 1, 1])
    assert.deepEqual(
      report.result.errors.map((error) => [error.row, error.field]),
      [
        [3, 'telefono'],
        [5, 'estado'],
        [6, 'asignado'],
        [7, 'id'],
        [8, 'nombre'],
      ],
    )
    // Admin and management may reopen a closed lead, but to contacted only.
    assert.match(report.result.errors[1]?.message ?? '', /closed lead cannot become new \(allowed: contacted\)/)
  })

  it('moves a lead named by id to the client an earlier row of the file creates', () => {
    const report = new Report()
    const moving = [
      { row: 2, cells: ['', '04121110005', 'Nuevo', '', ''] },
      { row: 3, cells: ['7', '04121110005', '', '', ''] },
    ]
    const inputs = checkLeadRows(moving, columns, rules, report, new Map())
    const planned = decideLeadRows(inputs, known, columns, { mode: 'upsert' }, 'admin', report, new Set())
    assert.deepEqual(
      planned.map((item) => [item.row, item.kind, item.id, item.joinsNewClient]),
      [
        [2, 'created', undefined, undefined],
        [3, 'updated', 7, true],
      ],
    )
  })

  it('fails an existing lead in create mode', () => {
    const report = new Report()
    const inputs = checkLeadRows([rows[2] as (typeof rows)[number]], columns, rules, report, new Map())
    assert.deepEqual(decideLeadRows(inputs, known, columns, { mode: 'create' }, 'admin', report, new Set()), [])
    assert.match(report.result.errors[0]?.message ?? '', /lead 7 of this client on whatsapp exists/)
  })
})
