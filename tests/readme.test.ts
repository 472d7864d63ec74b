import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { freePort, root, type ServerProcess, startServer } from './helpers/server.js'

interface Example {
  command: string
  /** Undefined for a block that only sets shell variables (`TOKEN=$(curl …)`), which the blocks after it use. */
  expectedStatus: number | undefined
  /** The `"field":value` pairs of the comment's body whose value is written out in full. */
  expectedFields: string[]
  /** The file the comment says the command writes (`written to /tmp/…`). */
  writes?: string
}

// A line that sets a variable from a command's output, and the lines that continue it.
const ASSIGNMENT = /^([A-Z_]+)=\$\(/

// A field with a string, number, boolean or null value, as JSON writes it without spaces.
const SCALAR_FIELD = /"\w+":(?:"[^"]*"|-?\d+(?:\.\d+)?|true|false|null)(?=[,}\]])/g

/**
 * The documents whose examples run, in this order: the integrations go on from where the README's
 * first calls stop, on the same database.
 */
const DOCUMENTS = ['README.md', 'docs/integrations.md', 'docs/operations.md']

/** Every fenced bash block of those documents that calls curl on localhost:8000, with the answer its comment names. */
async function readmeExamples(): Promise<Example[]> {
  const texts = await Promise.all(DOCUMENTS.map((path) => readFile(join(root, path), 'utf8')))
  const examples: Example[] = []
  for (const [, block = ''] of texts.join('\n').matchAll(/```bash\n([\s\S]*?)```/g)) {
    if (!/\bcurl\b/.test(block) || !block.includes('localhost:8000')) continue
    const lines = block.split('\n')
    const command = lines
      .filter((line) => !line.startsWith('#'))
      .join('\n')
      .trim()
    const answer = lines.find((line) => /^# \d{3}\b/.test(line)) ?? ''
    const status = answer.match(/^# (\d{3})\b/)?.[1]
    if (!status && ASSIGNMENT.test(command)) {
      examples.push({ command, expectedStatus: undefined, expectedFields: [] })
      continue
    }
    assert.ok(status, `an example names no status:\n${block}`)
    // "eyJ..." stands for a value that differs on each run.
    const expectedFields = (answer.match(SCALAR_FIELD) ?? []).filter((field) => !/\.\.\.|…/.test(field))
    const writes = answer.match(/\bwritten to (\/\S+)/)?.[1]
    examples.push({ command, expectedStatus: Number(status), expectedFields, writes })
  }
  return examples
}

/** Runs a command as written in bash, with curl also printing the status on a last line. */
async function run(command: string, variables: Record<string, string>): Promise<{ status: number; body: string }> {
  const script = `curl() { command curl -sS -w '\\n%{http_code}' "$@"; }\n${command}`
  const { stdout } = await promisify(execFile)('bash', ['-c', script], {
    timeout: 30_000,
    env: { ...process.env, ...variables },
  })
  const lines = stdout.trimEnd().split('\n')
  return { status: Number(lines.pop()), body: lines.join('\n') }
}

/** Runs a block of `NAME=$(…)` lines as written, with the real curl, and answers the variables it set. */
async function assign(command: string, variables: Record<string, string>): Promise<Record<string, string>> {
  const names = command
    .split('\n')
    .map((line) => line.match(ASSIGNMENT)?.[1])
    .filter((name): name is string => name !== undefined)
  const script = `set -eo pipefail\n${command}\n${printVariables(names)}`
  const { stdout } = await promisify(execFile)('bash', ['-c', script], {
    timeout: 30_000,
    env: { ...process.env, ...variables },
  })
  return JSON.parse(stdout.trim().split('\n').at(-1) as string)
}

/** A bash line that prints the named shell variables as one JSON object. */
function printVariables(names: string[]): string {
  const pairs = names.map((name) => `"${name}=$${name}"`).join(' ')
  return `node -e 'const out = {}; for (const pair of process.argv.slice(1)) { const at = pair.indexOf("="); out[pair.slice(0, at)] = pair.slice(at + 1) } console.log(JSON.stringify(out))' ${pairs}`
}

describe("the README's curl examples", () => {
  let server: ServerProcess | undefined
  let environment: ServerEnvironment | undefined
  let port = 8000

  before(async () => {
    environment = await serverEnvironment()
    // A free port, not the README's 8000, which a server of one's own may be using.
    port = await freePort()
    // As the README's webhook and WhatsApp sections start it: a receiver on this machine, WhatsApp's demo values.
    server = await startServer({
      ...environment.env,
      HOST: 'localhost',
      PORT: String(port),
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WHATSAPP_VERIFY_TOKEN: 'my-verify-token',
      WHATSAPP_APP_SECRET: 'my-app-secret',
      WHATSAPP_ACCESS_TOKEN: 'my-access-token',
      WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
    })
  })
  after(async () => {
    try {
      if (server) assert.equal(await server.stop(), 0)
    } finally {
      await environment?.cleanup()
    }
  })

  it('answer, in order and as written, the status and the fields each one names', async () => {
    const examples = await readmeExamples()
    assert.ok(examples.length >= 10, `only ${examples.length} examples found`)
    assert.match(examples[0]?.command ?? '', /\/auth\/login/, 'the README logs in first')
    // The shell variables the blocks set so far, as a reader's shell keeps them.
    let variables: Record<string, string> = {}
    const started = Date.now() - 1000
    for (const example of examples) {
      const command = example.command.replaceAll('localhost:8000', `localhost:${port}`)
      if (example.expectedStatus === undefined) {
        variables = { ...variables, ...(await assign(command, variables)) }
        continue
      }
      assert.ok(
        !/\$TOKEN\b/.test(command) || variables.TOKEN,
        `an example uses $TOKEN before a block set it:\n${example.command}`,
      )
      const { status, body } = await run(command, variables)
      assert.equal(status, example.expectedStatus, `${example.command}\nanswered ${status}: ${body}`)
      for (const field of example.expectedFields) {
        assert.ok(body.includes(field), `${example.command}\nanswered without ${field}: ${body}`)
      }
      if (example.writes) {
        assert.ok(
          (await stat(example.writes)).mtimeMs >= started,
          `${example.command}\ndid not write ${example.writes}`,
        )
      }
    }
    assert.match(variables.TOKEN ?? '', /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'the TOKEN line sets a JWT')
  })
})
