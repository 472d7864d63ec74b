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
  /** Everything it wrote so far, stdout and stderr. */
  output(): string
  exited: Promise<number | null>
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>
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
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)))
  return { code, output }
}

/** Starts `src/server.ts` as `npm start` does, and resolves once it listens. PORT 0 picks a free port. */
export async function startServer(env: Record<string, string>, options: { cwd?: string } = {}): Promise<ServerProcess> {
  const child = spawnTs(join('src', 'server.ts'), env, options)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = output.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
      if (match?.[1]) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', () => {
      clearTimeout(timer)
      reject(new Error(`server exited:\n${output}`))
    })
  })
  return {
    child,
    url,
    output: () => output,
    exited,
    stop() {
      child.kill('SIGTERM')
      return exited
    },
  }
}
