import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { sql } from 'kysely'
import { systemActor } from '../src/auth/actor.js'
import type { AuthenticatedActor } from '../src/auth/authenticate.js'
import { openDatabase } from '../src/db/database.js'
import { DomainError } from '../src/errors/domain.js'
import { importClients } from '../src/spreadsheets/client-import.js'
import { touchImport, undoAbandonedImports } from '../src/spreadsheets/import-undo.js'
import { ROWS_PER_LOOKUP, ROWS_PER_WRITE } from '../src/spreadsheets/imports.js'
import { importLeads } from '../src/spreadsheets/lead-import.js'
import type { SheetRow } from '../src/spreadsheets/reader.js'
import { ADMIN, mode, problemOf, serverEnvironment, startTestContext, type TestContext } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { createClient, createLead } from './helpers/fixtures.js'
import { startServer } from './helpers/server.js'

const rules = { defaultPhoneRegion: 'VE' as const, checkClientFields: () => [] }
const admin = (): AuthenticatedActor => ({ userId: 1, username: 'admin', role: 'admin', requestId: null })
const phoneOf = (index: number) => `0416${String(3_000_000 + index)}`
const e164 = (local: string) => `+58${local.slice(1)}`

/**
 * The rows of a file, `meanwhile` (a change by another request) running once the rows before
 * `changeAfter` have been checked and before anything is written: the rows go to the planner a
 * lookup at a time, and it asks for the next row only when it has checked the lookup before.
 */
async function* sheet(
  lines: string[][],
  changeAfter: number,
  meanwhile: () => Promise<unknown>,
): AsyncGenerator<SheetRow> {
  for (const [index, cells] of lines.entries()) {
    if (index === changeAfter) await meanwhile()
    yield { row: index + 1, cells }
  }
}

describe('imports undone', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext()
  })
  after(async () => {
    await ctx.close()
  })

  const clientsWithPhones = async (phones: string[]) =>
    Number(
      (
        await ctx.db
          .selectFrom('clients')
          .select(sql<number>`count(*)`.as('n'))
          .where('phone', 'in', phones.map(e164))
          .executeTakeFirstOrThrow()
      ).n,
    )
  const latestImport = () =>
    ctx.db.selectFrom('imports').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow()
  const auditOf = async (importId: number) => {
    const rows = await ctx.db
      .selectFrom('audit_logs')
      .select(['table_name', 'action', sql<number>`count(*)`.as('n')])
      .where('import_id', '=', importId)
      .groupBy(['table_name', 'action'])
      .execute()
    return Object.fromEntries(rows.map((row) => [`${row.table_name}.${row.action}`, Number(row.n)]))
  }
  const eventsSince = async (eventId: number) => {
    const rows = await ctx.db
      .selectFrom('events')
      .select(['type', sql<number>`count(*)`.as('n')])
      .where('id', '>', eventId)
      .groupBy('type')
      .execute()
    return Object.fromEntries(rows.map((row) => [row.type, Number(row.n)]))
  }
  const lastEventId = async () =>
    Number(
      (await ctx.db.selectFrom('events').select(sql<number>`coalesce(max(id), 0)`.as('id')).executeTakeFirstOrThrow())
        .id,
    )

  it('undoes the batches written when a later one meets a deadlock, and answers 409', async () => {
    const rows = ROWS_PER_WRITE * 2 + 10
    const phones = Array.from({ length: rows }, (_, index) => phoneOf(index))
    const doomed = e164(phones[ROWS_PER_WRITE + 5] as string)
    // The second batch's transaction is chosen as a deadlock's victim, as PostgreSQL would.
    await sql
      .raw(`
        create function test_deadlock() returns trigger language plpgsql as $$
        begin
          if new.phone = '${doomed}' then raise exception 'deadlock detected' using errcode = '40P01'; end if;
          return new;
        end $$;
        create trigger test_deadlock before insert on clients for each row execute function test_deadlock();
      `)
      .execute(ctx.db)
    const events = await lastEventId()
    try {
      const file = ['nombre,telefono', ...phones.map((phone, index) => `Lote ${index},${phone}`)].join('\n')
      const response = await ctx.inject({
        method: 'POST',
        url: '/clients/import',
        headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
        payload: file,
      })
      assert.equal(response.statusCode, 409, response.body)
      const problem = problemOf(response)
      assert.equal(problem.code, 'import_conflict')
      assert.match(problem.detail, /deadlock.*undone/)
    } finally {
      await sql.raw('drop trigger test_deadlock on clients; drop function test_deadlock()').execute(ctx.db)
    }
    assert.equal(await clientsWithPhones(phones), 0)
    const undone = await latestImport()
    assert.deepEqual([undone.kind, undone.state, undone.kept], ['clients', 'undone', 0])
    assert.ok(undone.finished_at)
    // The first batch was written, each row audited, then purged: both name the import.
    assert.deepEqual(await auditOf(undone.id), {
      'clients.create': ROWS_PER_WRITE,
      'clients.purge': ROWS_PER_WRITE,
    })
    assert.deepEqual(await eventsSince(events), {
      'client.created': ROWS_PER_WRITE,
      'client.deleted': ROWS_PER_WRITE,
    })
    // Searching finds none of them: the rows kept by triggers went with the clients.
    const search = await ctx.as(ctx.adminToken, 'GET', '/clients?q=Lote')
    assert.equal(search.json().total, 0)
  })

  it('undoes a client import, without partial=true, when a phone is taken meanwhile', async () => {
    const rows = ROWS_PER_WRITE + ROWS_PER_LOOKUP + 10
    const phones = Array.from({ length: rows }, (_, index) => phoneOf(1000 + index))
    const taken = phones[ROWS_PER_WRITE + 3] as string
    let other: { id: number } | undefined
    const lines = [['nombre', 'telefono'], ...phones.map((phone, index) => [`Carrera ${index}`, phone])]
    const attempt = importClients(
      ctx.db,
      admin(),
      // The phone is free when its row is checked, and taken before the second batch is written.
      sheet(lines, lines.length - 1, async () => {
        other = await createClient(ctx, { contact_name: 'Otro', phone: taken })
      }),
      { dryRun: false, mode: 'create', partial: false },
      rules,
    )
    const error = await attempt.then(
      () => assert.fail('the import should fail'),
      (thrown: unknown) => thrown,
    )
    assert.ok(error instanceof DomainError)
    assert.deepEqual([error.status, error.code], [409, 'import_conflict'])
    assert.match(error.message, /1 row\(s\) met a change made meanwhile/)
    assert.deepEqual(error.extra.errors, [
      {
        row: ROWS_PER_WRITE + 5,
        field: 'telefono',
        message: `a client with phone ${e164(taken)} was created meanwhile`,
      },
    ])
    // Only the other request's client has one of the file's phones.
    assert.equal(await clientsWithPhones(phones), 1)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/clients/${other?.id}`)).json().contact_name, 'Otro')
    const undone = await latestImport()
    assert.equal(undone.state, 'undone')
    const audit = await auditOf(undone.id)
    assert.equal(audit['clients.create'], audit['clients.purge'])
    assert.ok((audit['clients.create'] ?? 0) >= ROWS_PER_WRITE)
  })

  it('puts back the leads a lead import changed and removes what it created when a lead is trashed meanwhile', async () => {
    const seller = await ctx.createUser('sales')
    const client = await createClient(ctx, { contact_name: 'Lía' })
    const changed = await createLead<{ id: number; status: string }>(ctx, {
      client_id: client.id,
      channel: 'web',
      sales_notes: 'antes',
    })
    const trashed = await createLead(ctx, { client_id: client.id, channel: 'whatsapp' })
    const local = `0${client.phone.slice(3)}`
    const newPhones = Array.from({ length: ROWS_PER_WRITE + 20 }, (_, index) => phoneOf(2000 + index))
    const lines = [
      ['id', 'phone', 'nombre', 'status', 'asignado', 'sales_notes'],
      [String(changed.id), local, '', 'contacted', seller.username, 'después'],
      [String(trashed.id), local, '', 'contacted', '', ''],
      ...newPhones.map((phone, index) => ['', phone, `Nuevo ${index}`, '', '', 'nuevo']),
    ]
    const totalsBefore = await ctx.db
      .selectFrom('lead_totals')
      .select(sql<number>`sum(leads)`.as('n'))
      .executeTakeFirstOrThrow()
    const events = await lastEventId()
    const error = await importLeads(
      ctx.db,
      admin(),
      sheet(lines, lines.length - 1, () => ctx.as(ctx.adminToken, 'DELETE', `/leads/${trashed.id}`)),
      { dryRun: false, mode: 'upsert', partial: false },
      rules,
    ).then(
      () => assert.fail('the import should fail'),
      (thrown: unknown) => thrown,
    )
    assert.ok(error instanceof DomainError)
    assert.equal(error.code, 'import_conflict')
    assert.deepEqual(
      (error.extra.errors as Array<{ row: number; field: string }>).map((row) => [row.row, row.field]),
      [[3, 'id']],
    )
    const lead = (await ctx.as(ctx.adminToken, 'GET', `/leads/${changed.id}`)).json()
    assert.deepEqual([lead.status, lead.assigned_to, lead.sales_notes], ['new', null, 'antes'])
    assert.equal(await clientsWithPhones(newPhones), 0)
    const undone = await latestImport()
    const audit = await auditOf(undone.id)
    assert.equal(audit['leads.update'], 2, 'the change and its undo')
    assert.equal(audit['leads.create'], audit['leads.purge'])
    assert.equal(audit['clients.create'], audit['clients.purge'])
    const published = await eventsSince(events)
    assert.ok((published['lead.created'] ?? 0) > 0)
    // Each lead created, then deleted by the undo; and the lead trashed meanwhile.
    assert.equal(published['lead.deleted'], (published['lead.created'] ?? 0) + 1)
    assert.equal(published['client.created'], published['client.deleted'])
    // Counters kept by triggers count the leads as they are: the trashed one is out, nothing else changed.
    const totalsAfter = await ctx.db
      .selectFrom('lead_totals')
      .select(sql<number>`sum(leads)`.as('n'))
      .executeTakeFirstOrThrow()
    assert.equal(Number(totalsAfter.n), Number(totalsBefore.n) - 1)
  })

  it('undoes an import whose process stopped before its end, keeping what others changed since', async () => {
    const existing = await createClient(ctx, { contact_name: 'Existente', email: 'antes@example.com' })
    const file = [
      'nombre,telefono,correo',
      `Existente,0${existing.phone.slice(3)},despues@example.com`,
      `Ana,${phoneOf(5000)},`,
      `Berta,${phoneOf(5001)},`,
    ].join('\n')
    const response = await ctx.inject({
      method: 'POST',
      url: '/clients/import?mode=upsert',
      headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
      payload: file,
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual([response.json().created, response.json().updated], [2, 1])
    const imported = await latestImport()
    assert.equal(imported.state, 'done')
    const berta = (await ctx.as(ctx.adminToken, 'GET', `/clients/by-phone/${phoneOf(5001)}`)).json()
    const edited = await ctx.as(ctx.adminToken, 'PATCH', `/clients/${berta.id}`, { company_name: 'Taller Berta' })
    assert.equal(edited.statusCode, 200, edited.body)

    // A done import is never undone.
    assert.equal(await undoAbandonedImports(ctx.db, systemActor()), 0)
    // As if the process had stopped before its final switch, long enough ago; and one still being written.
    await ctx.db
      .updateTable('imports')
      .set({ state: 'writing', heartbeat_at: sql`now() - interval '1 hour'`, finished_at: null })
      .where('id', '=', imported.id)
      .execute()
    // Sent again meanwhile, the file would count those rows unchanged and then lose them: refused until undone.
    const again = (query: string) =>
      ctx.inject({
        method: 'POST',
        url: `/clients/import?mode=upsert${query}`,
        headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
        payload: file,
      })
    const refused = await again('')
    assert.equal(refused.statusCode, 409, refused.body)
    assert.equal(problemOf(refused).code, 'import_in_progress')
    assert.equal((await again('&dry_run=true')).statusCode, 200)
    const live = await ctx.db
      .insertInto('imports')
      .values({ kind: 'clients', user_id: 1 })
      .returning('id')
      .executeTakeFirstOrThrow()
    assert.equal(await undoAbandonedImports(ctx.db, systemActor()), 1)

    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/clients/by-phone/${phoneOf(5000)}`)).statusCode, 404)
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/clients/${berta.id}`)).json().company_name, 'Taller Berta')
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/clients/${existing.id}`)).json().email, 'antes@example.com')
    const undone = await ctx.db
      .selectFrom('imports')
      .selectAll()
      .where('id', '=', imported.id)
      .executeTakeFirstOrThrow()
    assert.deepEqual([undone.state, undone.kept], ['undone', 1])
    const audit = await auditOf(imported.id)
    assert.deepEqual(audit, { 'clients.create': 2, 'clients.update': 2, 'clients.purge': 1 })
    const undoRows = await ctx.db
      .selectFrom('audit_logs')
      .select(['username', 'action'])
      .where('import_id', '=', imported.id)
      .where('action', 'in', ['purge'])
      .execute()
    assert.deepEqual(undoRows, [{ username: 'system', action: 'purge' }])

    // The import still being written is left alone; once undone, its next batch is refused.
    const untouched = await ctx.db
      .selectFrom('imports')
      .select('state')
      .where('id', '=', live.id)
      .executeTakeFirstOrThrow()
    assert.equal(untouched.state, 'writing')
    await ctx.db.updateTable('imports').set({ state: 'undoing' }).where('id', '=', live.id).execute()
    await assert.rejects(
      ctx.db.transaction().execute((trx) => touchImport(trx, live.id)),
      (error: unknown) => error instanceof DomainError && error.code === 'import_abandoned',
    )
    await ctx.db.updateTable('imports').set({ state: 'undone' }).where('id', '=', live.id).execute()
  })

  it('keeps what no longer holds or others built on, and undoes the other abandoned imports all the same', async () => {
    const before = await ctx.createUser('sales')
    const after = await ctx.createUser('sales')
    const client = await createClient(ctx, { contact_name: 'Marta' })
    const lead = await createLead(ctx, { client_id: client.id, channel: 'web', assigned_to: before.id })
    const newPhone = phoneOf(6000)
    const post = (url: string, payload: string) =>
      ctx.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'text/csv' },
        payload,
      })
    const leadsImport = await post(
      '/leads/import?mode=upsert',
      [
        'id,phone,nombre,asignado',
        `${lead.id},0${client.phone.slice(3)},,${after.username}`,
        `,${newPhone},Nuevo cliente,`,
      ].join('\n'),
    )
    assert.equal(leadsImport.statusCode, 200, leadsImport.body)
    const leadsImportId = (await latestImport()).id
    const clientsImport = await post('/clients/import', ['nombre,telefono', `Otra,${phoneOf(6001)}`].join('\n'))
    assert.equal(clientsImport.statusCode, 200, clientsImport.body)
    const clientsImportId = (await latestImport()).id

    // Since then: the lead's old assignee left, and somebody noted a call on the imported lead.
    assert.equal((await ctx.as(ctx.adminToken, 'PATCH', `/users/${before.id}`, { is_active: false })).statusCode, 200)
    const created = (await ctx.as(ctx.adminToken, 'GET', `/clients/by-phone/${newPhone}`)).json()
    const createdLead = (await ctx.as(ctx.adminToken, 'GET', `/leads?client_id=${created.id}`)).json().items[0]
    const note = await ctx.as(ctx.adminToken, 'POST', `/leads/${createdLead.id}/activities`, {
      type: 'call',
      body: 'Llamó para confirmar',
    })
    assert.equal(note.statusCode, 201, note.body)

    await ctx.db
      .updateTable('imports')
      .set({ state: 'writing', heartbeat_at: sql`now() - interval '1 hour'`, finished_at: null })
      .where('id', 'in', [leadsImportId, clientsImportId])
      .execute()
    assert.equal(await undoAbandonedImports(ctx.db, systemActor()), 2)

    const imports = await ctx.db
      .selectFrom('imports')
      .select(['id', 'state', 'kept'])
      .where('id', 'in', [leadsImportId, clientsImportId])
      .orderBy('id')
      .execute()
    // Kept: the assignment (its old assignee is inactive), the lead with the call, and so its client.
    assert.deepEqual(imports, [
      { id: leadsImportId, state: 'undone', kept: 3 },
      { id: clientsImportId, state: 'undone', kept: 0 },
    ])
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/leads/${lead.id}`)).json().assigned_to, after.id)
    const activities = (await ctx.as(ctx.adminToken, 'GET', `/leads/${createdLead.id}/activities`)).json()
    assert.ok(activities.items.some((item: { body: string | null }) => item.body === 'Llamó para confirmar'))
    assert.equal((await ctx.as(ctx.adminToken, 'GET', `/clients/by-phone/${phoneOf(6001)}`)).statusCode, 404)
  })
})

// The killed server's database is read while it runs: only a PostgreSQL server allows a second process in.
describe('an import whose server is killed mid-write', {
  skip: mode === 'embedded' && 'needs a database server',
}, () => {
  it('leaves batches that the undo of abandoned imports removes', async () => {
    const environment = await serverEnvironment()
    const handle = openDatabase({
      url: environment.env.DATABASE_URL as string,
      poolSize: 1,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
    })
    const server = await startServer(environment.env)
    try {
      const login = await checkedFetch(`${server.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ADMIN),
      })
      const { access_token: token } = (await login.json()) as { access_token: string }
      const rows = 5_000
      const file = [
        'nombre,telefono',
        ...Array.from({ length: rows }, (_, index) => `Corte ${index},${phoneOf(10_000 + index)}`),
      ]
      const answer = fetch(`${server.url}/clients/import`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
        body: file.join('\n'),
      }).catch((error: unknown) => error)
      // Killed once a few batches are in.
      const written = () =>
        handle.db
          .selectFrom('audit_logs')
          .select(sql<number>`count(*)`.as('n'))
          .where('import_id', 'is not', null)
          .executeTakeFirstOrThrow()
          .then((row) => Number(row.n))
      const giveUpAt = Date.now() + 60_000
      while ((await written()) < ROWS_PER_WRITE * 3 && Date.now() < giveUpAt)
        await new Promise((r) => setTimeout(r, 50))
      server.child.kill('SIGKILL')
      await server.exited
      assert.ok((await answer) instanceof Error, 'the import got no answer')

      const cut = await handle.db.selectFrom('imports').selectAll().executeTakeFirstOrThrow()
      assert.equal(cut.state, 'writing')
      const kept = await handle.db.selectFrom('clients').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()
      const left = Number(kept.n)
      assert.ok(left >= ROWS_PER_WRITE * 3 && left < rows, `${left} clients written before the kill`)
      // Every batch is whole: a client for each create audit row, no more.
      assert.equal(await written(), left)

      // Five minutes later for the housekeeping of the next instance.
      await handle.db.updateTable('imports').set({ heartbeat_at: sql`now() - interval '6 minutes'` }).execute()
      assert.equal(await undoAbandonedImports(handle.db, systemActor()), 1)
      const after = await handle.db
        .selectFrom('clients')
        .select(sql<number>`count(*)`.as('n'))
        .executeTakeFirstOrThrow()
      assert.equal(Number(after.n), 0)
      const undone = await handle.db.selectFrom('imports').select(['state', 'kept']).executeTakeFirstOrThrow()
      assert.deepEqual(undone, { state: 'undone', kept: 0 })
    } finally {
      server.child.kill('SIGKILL')
      await handle.close()
      await environment.cleanup()
    }
  })
})
