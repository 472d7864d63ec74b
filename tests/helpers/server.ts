import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'

export const root = join(import.meta.dirname, '..', '..')

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface ServerProcess {
  child: ChildProcess
  url: string
  exited: Promise<number | null>
  /** The last 16 KiB the process wrote to stdout and stderr. */
  output(): string
  /** SIGTERM (SIGKILL after 15 s), then the exit code. */
  stop(): Promise<number | null>
}

export interface StartOptions {
  /** The TypeScript entry point, relative to the root; `src/server.ts` by default. */
  script?: string
  /**
   * When given, the process gets a free PORT and is ready once GET readyPath answers 2xx, for
   * servers that log nothing; otherwise it is ready when it logs "Server listening at".
   */
  readyPath?: string
  timeoutMs?: number
  /** The working directory (where `.env` is read); the project's root by default. */
  cwd?: string
}

// tsx by its own path, so that a process started in another folder finds it.
const TSX = import.meta.resolve('tsx')

/** Runs a TypeScript file of the project (a script, or the server) as npm would. */
export function spawnTs(
  file: string,
  env: Record<string, string>,
  options: { cwd?: string; args?: string[] } = {},
): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, join(root, file), ...(options.args ?? [])], {
    cwd: options.cwd ?? root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Runs a script to its end: its exit code and everything it wrote. */
export async function runTs(
  file: string,
  env: Record<string, string>,
  options: { cwd?: string; args?: string[] } = {},
): Promise<{ code: number | null; output: string }> {
  const child = spawnTs(file, env, options)
  let output = ''
  const keep = (chunk: Buffer) => {
    output += chunk.toString()
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)))
  return { code, output }
}

/** Starts `src/server.ts` as `npm start` does (or another script), and resolves once it is ready. PORT 0 picks a free port. */
export async function startServer(env: Record<string, string>, options: StartOptions = {}): Promise<ServerProcess> {
  const script = options.script ?? join('src', 'server.ts')
  const timeoutMs = options.timeoutMs ?? 60_000
  const port = options.readyPath ? String(await freePort()) : '0'
  const child = spawnTs(script, { PORT: port, ...env }, { cwd: options.cwd })
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code
      resolve(code)
    }),
  )
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-16_384)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const url = options.readyPath
    ? await pollUntilReady(`http://127.0.0.1:${port}`, options.readyPath, timeoutMs, () => exitCode !== undefined)
    : await listeningLine(child, timeoutMs)
  const stop = async () => {
    if (exitCode !== undefined) return exitCode
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  return { child, url, exited, output: () => output, stop }

  async function pollUntilReady(base: string, path: string, ms: number, hasExited: () => boolean): Promise<string> {
    const deadline = Date.now() + ms
    for (;;) {
      if (hasExited()) throw new Error(`${script} exited before it was ready:\n${output}`)
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`${script} was not ready within ${ms / 1000} s:\n${output}`)
      }
      const ready = await fetch(`${base}${path}`).then(
        (response) => response.ok,
        () => false,
      )
      if (ready) return base
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  function listeningLine(spawned: ChildProcess, ms: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      // Left running, a server that is not up in time would hold its DATA_DIR (and its lock).
      const timer = setTimeout(() => {
        spawned.kill('SIGKILL')
        reject(new Error(`server did not start within ${ms / 1000} s:\n${output}`))
      }, ms)
      const onData = () => {
        const match = output.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
        if (match?.[1]) {
          clearTimeout(timer)
          resolve(match[1])
        }
      }
      spawned.stdout?.on('data', onData)
      spawned.stderr?.on('data', onData)
      spawned.on('exit', () => {
        clearTimeout(timer)
        reject(new Error(`server exited:\n${output}`))
      })
    })
  }
}
