import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { problemOf, startTestContext, type TestContext } from './helpers/context.js'
import {
  contractOf,
  type OpenApiDocument,
  ResponseContract,
  ResponseContractError,
  useContract,
} from './helpers/contract.js'

const activity = (direction: unknown) => ({
  id: 1,
  lead_id: 1,
  type: 'whatsapp',
  body: 'hola',
  direction,
  occurred_at: '2026-11-26T20:05:00.000Z',
  created_by: null,
  created_at: '2026-11-26T20:05:00.000Z',
  meta: {},
})
const page = (items: unknown[]) =>
  JSON.stringify({ items, total: items.length, total_exact: true, limit: 50, offset: 0, next_cursor: null })

/** Every schema object in a document, however deep. */
function* schemasIn(value: unknown): Generator<Record<string, unknown>> {
  if (Array.isArray(value)) {
    for (const item of value) yield* schemasIn(item)
  } else if (value !== null && typeof value === 'object') {
    yield value as Record<string, unknown>
    for (const inner of Object.values(value)) yield* schemasIn(inner)
  }
}

describe('the OpenAPI document, and the check of each response against it', () => {
  let ctx: TestContext
  let document: OpenApiDocument & { components: { schemas: Record<string, unknown> } }

  before(async () => {
    ctx = await startTestContext()
    document = (await ctx.inject({ method: 'GET', url: '/openapi.json' })).json()
  })
  after(() => ctx?.close())

  it('lists null among the values of every nullable enum, as GET /leads/{id}/activities answers it', () => {
    const direction = (document.components.schemas.Activity as { properties: Record<string, unknown> }).properties
      .direction
    assert.deepEqual(direction, {
      type: ['string', 'null'],
      enum: ['inbound', 'outbound', null],
      description: 'For messages: inbound or outbound',
    })
    for (const schema of schemasIn(document)) {
      if (Array.isArray(schema.enum) && Array.isArray(schema.type) && schema.type.includes('null')) {
        assert.ok(schema.enum.includes(null), `nullable enum without null: ${JSON.stringify(schema)}`)
      }
    }
  })

  it('documents offset as at most 10,000 on every list, and a deeper one is a 400 that points to cursor', async () => {
    let lists = 0
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const parameters = (operation as { parameters?: Array<{ name: string; schema: { maximum?: number } }> })
          .parameters
        const offset = parameters?.find((parameter) => parameter.name === 'offset')
        if (!offset) continue
        lists += 1
        assert.equal(offset.schema.maximum, 10_000, `${method} ${path}`)
      }
    }
    assert.ok(lists >= 10, `${lists} lists`)
    const deep = await ctx.as(ctx.adminToken, 'GET', '/leads?offset=10001')
    assert.equal(deep.statusCode, 400)
    assert.deepEqual(problemOf(deep).errors, [
      {
        field: 'offset',
        message: 'must be at most 10000; page deeper with cursor (the next_cursor of the previous page)',
      },
    ])
    assert.equal(
      problemOf(deep).detail,
      'offset: must be at most 10000; page deeper with cursor (the next_cursor of the previous page)',
    )
  })

  describe('the check', () => {
    const activities = { method: 'GET', url: '/leads/7/activities?limit=50', contentType: 'application/json' }

    it('passes a body the document describes, a null direction included', () => {
      const contract = contractOf(ctx.app)
      contract.check({ ...activities, status: 200, body: page([activity('inbound'), activity(null)]) })
    })

    it('throws on a value the schema refuses, naming the method, the route, the status and the field', () => {
      const contract = contractOf(ctx.app)
      assert.throws(
        () => contract.check({ ...activities, status: 200, body: page([activity('sideways')]) }),
        (error: Error) => {
          assert.ok(error instanceof ResponseContractError)
          assert.match(
            error.message,
            /^GET \/leads\/\{id\}\/activities \(\/leads\/7\/activities\?limit=50\) answered 200/,
          )
          assert.match(error.message, /body\/items\/0\/direction must be equal to one of the allowed values/)
          return true
        },
      )
    })

    it('throws on a status the operation does not list, a media type it does not list, or a body that is not JSON', () => {
      const contract = contractOf(ctx.app)
      assert.throws(
        () => contract.check({ ...activities, status: 418, body: '{}' }),
        /GET \/leads\/\{id\}\/activities .* answered 418, a status the OpenAPI document does not list/,
      )
      assert.throws(
        () => contract.check({ ...activities, status: 200, contentType: 'text/html', body: '<p>' }),
        /answered 200 as text\/html, where the document lists application\/json/,
      )
      assert.throws(
        () => contract.check({ ...activities, status: 200, body: '{"items": [' }),
        /with a body that is not JSON/,
      )
      assert.throws(
        () =>
          contract.check({
            method: 'DELETE',
            url: '/clients/3',
            status: 204,
            contentType: 'application/json',
            body: '{}',
          }),
        /DELETE \/clients\/\{id\} \(\/clients\/3\) answered 204 with a body .* where the document lists none/,
      )
    })

    it('takes a literal segment over a parameter, HEAD as GET, and leaves out what the document leaves out', () => {
      const contract = contractOf(ctx.app)
      // /clients/search is not /clients/{id}: its page is no Client.
      contract.check({
        method: 'GET',
        url: '/clients/search?q=ana',
        status: 200,
        contentType: 'application/json; charset=utf-8',
        body: page([]),
      })
      contract.check({
        method: 'HEAD',
        url: '/leads/7/activities',
        status: 200,
        contentType: 'application/json',
        body: '',
      })
      assert.throws(
        () =>
          contract.check({ method: 'HEAD', url: '/leads/7/activities', status: 418, contentType: undefined, body: '' }),
        /HEAD \/leads\/\{id\}\/activities .* answered 418/,
      )
      for (const url of ['/docs/static/index.html', '/dashboard', '/openapi.json', '/nowhere']) {
        contract.check({ method: 'GET', url, status: 200, contentType: 'text/html', body: '<p>' })
      }
      // A method the path does not have (a 405) is not an operation of the document either.
      contract.check({ method: 'PUT', url: '/clients/1', status: 405, contentType: 'text/html', body: '' })
    })

    it('fails a test that receives an undocumented answer through ctx.inject or ctx.as', async () => {
      const lying = structuredClone(document)
      delete lying.paths['/health']?.get?.responses?.['200']
      useContract(ctx.app, new ResponseContract(lying))
      try {
        await assert.rejects(
          ctx.inject({ method: 'GET', url: '/health' }),
          /GET \/health \(\/health\) answered 200, a status the OpenAPI document does not list \(it lists 400\)/,
        )
        await assert.rejects(ctx.as(undefined, 'GET', '/health'), ResponseContractError)
        const unchecked = await ctx.injectUnchecked('the document is made to lie here', {
          method: 'GET',
          url: '/health',
        })
        assert.equal(unchecked.statusCode, 200)
      } finally {
        useContract(ctx.app, new ResponseContract(document))
      }
      assert.equal((await ctx.inject({ method: 'GET', url: '/health' })).statusCode, 200)
    })
  })
})
