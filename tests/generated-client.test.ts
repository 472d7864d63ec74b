import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { root, type ServerProcess, startServer } from './helpers/server.js'

const run = promisify(execFile)

const clientDir = join(root, 'tests', 'client')
const generatedDir = join(clientDir, 'generated')
const generatedFile = join(generatedDir, 'api.ts')
const openapiTypescript = join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

/** What tests/client/scenario.ts returns; spelled out here so that `tsc -p .` never needs the generated types. */
interface Summary {
  clientId: number
  phone: string
  leadId: number
  leadClientId: number
  status: string
  statsTotal: number
  statsContacted: number
}

/** The output of a command that failed, for an assertion message. */
function outputOf(error: unknown): string {
  const { code, stdout, stderr } = error as { code?: unknown; stdout?: string; stderr?: string }
  return `exit code ${String(code)}\n--- stdout\n${stdout ?? ''}\n--- stderr\n${stderr ?? ''}`
}

describe('a typed client generated from the served OpenAPI document', () => {
  let server: ServerProcess | undefined
  let environment: ServerEnvironment | undefined
  let generated = false
  let typeChecked = false
  let passed = false

  before(async () => {
    environment = await serverEnvironment()
    server = await startServer(environment.env)
  })

  after(async () => {
    try {
      if (server) assert.equal(await server.stop(), 0, 'the server exits 0 on SIGTERM')
    } finally {
      await environment?.cleanup()
      // Kept after a failure, to look at; removed otherwise (biome would lint the generated code).
      if (passed) await rm(generatedDir, { recursive: true, force: true })
    }
  })

  it('generates TypeScript types from /openapi.json with openapi-typescript', async () => {
    assert.ok(server, 'the server did not start')
    await rm(generatedDir, { recursive: true, force: true })
    await mkdir(generatedDir, { recursive: true })
    try {
      await run(process.execPath, [openapiTypescript, `${server.url}/openapi.json`, '--output', generatedFile], {
        cwd: root,
      })
    } catch (error) {
      assert.fail(`openapi-typescript failed on ${server.url}/openapi.json:\n${outputOf(error)}`)
    }
    assert.ok((await stat(generatedFile)).size > 0, 'the generated file is empty')
    generated = true
  })

  it('type-checks the scenario against the generated types', async () => {
    assert.ok(generated, 'no generated types to check against')
    try {
      await run(process.execPath, [tsc, '-p', join(clientDir, 'tsconfig.json')], { cwd: root })
    } catch (error) {
      assert.fail(`tsc -p tests/client/tsconfig.json failed:\n${outputOf(error)}`)
    }
    typeChecked = true
  })

  it('runs the scenario against the server: log in, create a client and a lead, move it on, read the stats', async () => {
    assert.ok(server, 'the server did not start')
    assert.ok(typeChecked, 'the scenario did not type-check')
    const scenario: { runScenario(baseUrl: string, fetch: typeof globalThis.fetch): Promise<Summary> } = await import(
      pathToFileURL(join(clientDir, 'scenario.ts')).href
    )
    const summary = await scenario.runScenario(server.url, checkedFetch)

    assert.ok(Number.isInteger(summary.clientId) && summary.clientId > 0, `client id ${summary.clientId}`)
    assert.ok(Number.isInteger(summary.leadId) && summary.leadId > 0, `lead id ${summary.leadId}`)
    assert.deepEqual(summary, {
      clientId: summary.clientId,
      phone: '+584123456789',
      leadId: summary.leadId,
      leadClientId: summary.clientId,
      status: 'contacted',
      statsTotal: 1,
      statsContacted: 1,
    })
    passed = true
  })
})
