import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { WORD_SIMILARITY_THRESHOLD } from '../src/db/search.js'
import { startTestContext, type TestContext } from './helpers/context.js'
import { createClient } from './helpers/fixtures.js'

/** A setting as a brand-new session of the test's database sees it, on a connection of its own. */
async function freshSetting(ctx: TestContext, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: ctx.url })
  await client.connect()
  try {
    const { rows } = await client.query('select current_setting($1) as value', [name])
    return rows[0].value
  } finally {
    await client.end()
  }
}

describe('no session state a pooler would lose', () => {
  let ctx: TestContext

  before(async () => {
    ctx = await startTestContext()
  })
  after(async () => {
    await ctx?.close()
  })

  it('a connection of its own finds the threshold of typo search already set, and a typo is found', async () => {
    assert.equal(Number(await freshSetting(ctx, 'pg_trgm.word_similarity_threshold')), WORD_SIMILARITY_THRESHOLD)
    const client = await createClient(ctx, { contact_name: 'Marta Quintero' })
    const found = await ctx.as(ctx.adminToken, 'GET', '/clients?q=Quintreo')
    assert.equal(found.statusCode, 200)
    assert.deepEqual(
      found.json().items.map((item: { id: number }) => item.id),
      [client.id],
    )
  })

  it('every new session of the database compiles nothing just in time', async (t) => {
    if (ctx.embedded) return t.skip('the embedded database has no JIT compiler')
    assert.equal(await freshSetting(ctx, 'jit'), 'off')
  })

  it('sends no statement_timeout when DB_STATEMENT_TIMEOUT_MS is 0, as PgBouncer needs', async (t) => {
    if (ctx.embedded) return t.skip('the embedded database takes no startup parameters')
    const setting = async (context: TestContext) =>
      (
        await context.db
          .selectNoFrom((eb) => eb.fn<string>('current_setting', [eb.val('statement_timeout')]).as('value'))
          .executeTakeFirstOrThrow()
      ).value
    const quiet = await startTestContext({ DB_STATEMENT_TIMEOUT_MS: '0' })
    try {
      assert.equal(await setting(quiet), await freshSetting(ctx, 'statement_timeout'))
    } finally {
      await quiet.close()
    }
    // Through PgBouncer (CI runs this file there with DB_STATEMENT_TIMEOUT_MS=0) a timeout sent at connect is refused.
    if (process.env.DB_STATEMENT_TIMEOUT_MS === '0') return
    const loud = await startTestContext({ DB_STATEMENT_TIMEOUT_MS: '4000' })
    try {
      assert.equal(await setting(loud), '4s')
    } finally {
      await loud.close()
    }
  })
})
