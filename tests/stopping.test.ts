import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { after, describe, it } from 'node:test'
import { type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { freePort, root } from './helpers/server.js'

interface Started {
  npm: ChildProcess
  url: string
  output(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** `npm start` as a person or a process manager runs it: its own process group, like a terminal's job. */
async function npmStart(env: Record<string, string>): Promise<Started> {
  const port = await freePort()
  const npm = spawn('npm', ['start'], {
    cwd: root,
    detached: true,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      HOST: '127.0.0.1',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: Buffer) => {
    output += chunk.toString()
  }
  npm.stdout?.on('data', keep)
  npm.stderr?.on('data', keep)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.on('exit', (code, signal) => resolve({ code, signal })),
  )
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 90_000
  while (!/"msg":"Mini CRM API ready/.test(output)) {
    if (Date.now() > deadline || npm.exitCode !== null) {
      killGroup(npm, 'SIGKILL')
      throw new Error(`npm start was not ready:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  assert.equal((await fetch(`${url}/health`)).status, 200)
  return { npm, url, output: () => output, exited }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(-(child.pid as number), signal)
  } catch {
    // Already gone.
  }
}

/** The processes still in the group npm leads (npm, a shell, node). */
function groupMembers(child: ChildProcess): string[] {
  const table = execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' })
  return table
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, pgid]) => pgid === String(child.pid) && pid !== String(process.pid))
    .map((fields) => fields.join(' '))
}

async function assertStoppedGracefully(started: Started, signal: NodeJS.Signals) {
  const timer = setTimeout(() => killGroup(started.npm, 'SIGKILL'), 30_000)
  const { code } = await started.exited
  clearTimeout(timer)
  // npm is gone once its child is; give the kernel a moment to reap the rest of the group, if any.
  for (let attempt = 0; attempt < 20 && groupMembers(started.npm).length > 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const left = groupMembers(started.npm)
  killGroup(started.npm, 'SIGKILL')
  assert.deepEqual(left, [], `still running after ${signal}`)
  assert.equal(code, 0, started.output())
  const output = started.output()
  assert.equal(output.match(/"msg":"shutting down"/g)?.length, 1, output)
  assert.match(output, new RegExp(`"signal":"${signal}"`))
  assert.match(output, /"msg":"stopped"/, output)
  assert.doesNotMatch(output, /second/i, output)
  await assert.rejects(fetch(`${started.url}/health`), 'nothing listens any more')
}

describe('npm start stops cleanly, once', () => {
  const environments: ServerEnvironment[] = []
  after(async () => {
    for (const environment of environments) await environment.cleanup()
  })

  it('on SIGTERM to npm alone, as a process manager sends it', { timeout: 150_000 }, async () => {
    const environment = await serverEnvironment()
    environments.push(environment)
    const started = await npmStart(environment.env)
    process.kill(started.npm.pid as number, 'SIGTERM')
    await assertStoppedGracefully(started, 'SIGTERM')
  })

  it('on one Ctrl-C, a SIGINT to the whole process group', { timeout: 150_000 }, async () => {
    const environment = await serverEnvironment()
    environments.push(environment)
    const started = await npmStart(environment.env)
    killGroup(started.npm, 'SIGINT')
    await assertStoppedGracefully(started, 'SIGINT')
  })
})
