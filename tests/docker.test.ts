import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { freePort, root, startServer } from './helpers/server.js'

// Docker is not needed: what the image relies on is checked here, on the same files.
const run = promisify(execFile)
const dist = join(root, 'dist')

/** The HEALTHCHECK's command, as the image runs it. */
async function healthcheckScript(): Promise<string> {
  const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8')
  // HEALTHCHECK [options] \ (continued) CMD ["node", "-e", "…"]
  const exec = dockerfile.match(/^HEALTHCHECK [^\n]*(?:\\\n[^\n]*?)?CMD (\[.*\])$/m)?.[1]
  assert.ok(exec, `no HEALTHCHECK … CMD [...] in the Dockerfile:\n${dockerfile}`)
  const [program, flag, script] = JSON.parse(exec) as string[]
  assert.deepEqual([program, flag], ['node', '-e'], 'the slim image has node, not curl')
  return script as string
}

/** The bare package names that a compiled file and the files it imports need, the project's own files followed. */
async function packagesNeeded(
  entry: string,
  seen = new Set<string>(),
  found = new Set<string>(),
): Promise<Set<string>> {
  if (seen.has(entry)) return found
  seen.add(entry)
  const code = await readFile(entry, 'utf8')
  for (const [, specifier = ''] of code.matchAll(
    /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|import\(['"]([^'"]+)['"]\)/g,
  )) {
    if (specifier.startsWith('.')) await packagesNeeded(resolve(dirname(entry), specifier), seen, found)
    else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
      found.add(
        specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string),
      )
    }
  }
  return found
}

describe('the Docker image', () => {
  let environment: ServerEnvironment | undefined
  before(async () => {
    // As the image's build stage does.
    await run('npm', ['run', 'build'], { cwd: root, timeout: 240_000 })
  })
  after(async () => {
    await environment?.cleanup()
  })

  it('has a HEALTHCHECK that passes on a running server and fails when nothing answers', async () => {
    const script = await healthcheckScript()
    environment = await serverEnvironment()
    const server = await startServer(environment.env)
    try {
      const port = new URL(server.url).port
      await run(process.execPath, ['-e', script], { env: { ...process.env, PORT: port }, timeout: 10_000 })
      await assert.rejects(
        run(process.execPath, ['-e', script], { env: { ...process.env, PORT: String(await freePort()) } }),
        (error: { code?: number }) => error.code === 1,
      )
    } finally {
      assert.equal(await server.stop(), 0)
    }
  })

  it('restarts with the machine: compose.yaml gives every service restart: unless-stopped', async () => {
    const compose = await readFile(join(root, 'compose.yaml'), 'utf8')
    for (const service of ['postgres', 'api']) {
      const block = compose.split(new RegExp(`^  ${service}:\\n`, 'm'))[1]?.split(/^ {2}\w/m)[0] ?? ''
      assert.match(block, /^ {4}restart: unless-stopped$/m, service)
    }
  })

  it('runs create-admin and db from the compiled JavaScript, with production dependencies only', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
    }
    for (const entry of ['server.js', 'cli/create-admin.js', 'cli/db.js']) {
      const needed = [...(await packagesNeeded(join(dist, entry)))]
      assert.deepEqual(
        needed.filter((name) => !(name in pkg.dependencies)),
        [],
        `dist/${entry} needs packages that npm ci --omit=dev leaves out`,
      )
    }
    const help = await run(process.execPath, [join(dist, 'cli', 'create-admin.js'), '--help'], { cwd: root })
    assert.match(help.stdout, /^usage: create-admin \[username\]/)

    environment ??= await serverEnvironment()
    const env = { ...process.env, NODE_ENV: 'test', ...environment.env }
    const created = await run(process.execPath, [join(dist, 'cli', 'create-admin.js'), 'operator'], {
      cwd: root,
      env: { ...env, ADMIN_PASSWORD: 'a-long-enough-password' },
      timeout: 120_000,
    })
    assert.match(created.stdout, /Created admin operator/)
    const status = await run(process.execPath, [join(dist, 'cli', 'db.js'), 'status'], {
      cwd: root,
      env,
      timeout: 120_000,
    })
    assert.match(status.stdout, /Applied: \d+/)
  })
})
