import assert from 'node:assert/strict'
import { cp, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ADMIN, embeddedTemplatePath, mode, type ServerEnvironment, serverEnvironment } from './helpers/context.js'
import { checkedFetch } from './helpers/contract.js'
import { runTs, type ServerProcess, startServer } from './helpers/server.js'

/** The TCP ports a process listens on, read from /proc: its socket inodes matched to the listening table. */
async function listeningTcpPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const inode = target.match(/^socket:\[(\d+)\]$/)?.[1]
    if (inode) inodes.add(inode)
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(table, 'utf8').catch(() => '')).trim().split('\n').slice(1)
    for (const line of lines) {
      const fields = line.trim().split(/\s+/)
      const [, local = '', , state, , , , , , inode = ''] = fields
      // 0A: LISTEN.
      if (state === '0A' && inodes.has(inode)) ports.push(Number.parseInt(local.split(':').pop() ?? '', 16))
    }
  }
  return ports
}

async function login(url: string, password: string): Promise<number> {
  const response = await checkedFetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: ADMIN.username, password }),
  })
  return response.status
}

describe('the data folder of a running server', () => {
  let environment: ServerEnvironment | undefined
  let server: ServerProcess | undefined
  after(async () => {
    server?.child.kill('SIGKILL')
    await server?.exited
    await environment?.cleanup()
  })

  it('serves the embedded database on a private Unix socket, with no TCP port but the API', async (t) => {
    environment = await serverEnvironment()
    server = await startServer(environment.env)
    if (mode !== 'embedded') return t.skip('no embedded database when DATABASE_URL is set')
    const apiPort = Number(new URL(server.url).port)
    assert.deepEqual(await listeningTcpPorts(server.child.pid as number), [apiPort])
    const folder = await stat(environment.dataDir)
    assert.equal(folder.mode & 0o777, 0o700, 'DATA_DIR is entered by its owner only')
    const socket = await stat(join(environment.dataDir, '.s.PGSQL.5432'))
    assert.ok(socket.isSocket())
    assert.equal(socket.mode & 0o077, 0, 'the socket is reachable by its owner only')
  })

  it('refuses a second server on the same DATA_DIR, and the first one carries on', async (t) => {
    assert.ok(environment && server)
    if (mode !== 'embedded') return t.skip('a database server has many clients; the lock guards the embedded one')
    const second = await runTs('src/server.ts', environment.env)
    assert.notEqual(second.code, 0)
    assert.match(second.output, /DATA_DIR .* is in use by another process/)
    assert.doesNotMatch(second.output, /\n\s+at /, 'no stack trace')
    assert.equal((await checkedFetch(`${server.url}/ready`)).status, 200)
    assert.equal(await login(server.url, ADMIN.password), 200)
  })

  it('refuses npm run reset while the server runs', async (t) => {
    assert.ok(environment && server)
    if (mode !== 'embedded') return t.skip('reset is for the embedded database')
    const reset = await runTs('scripts/reset.ts', environment.env, { args: ['--yes'] })
    assert.notEqual(reset.code, 0)
    assert.match(reset.output, /is in use by another process/)
    assert.equal(await login(server.url, ADMIN.password), 200)
  })

  it('resets a password with create-admin while the server runs; the server and a restart both see it', async () => {
    assert.ok(environment && server)
    const reset = await runTs('src/cli/create-admin.ts', { ...environment.env, ADMIN_PASSWORD: 'a-new-admin-pass' })
    assert.equal(reset.code, 0, reset.output)
    assert.match(reset.output, /Reset the password of admin/)
    assert.equal(await login(server.url, 'a-new-admin-pass'), 200, 'the running server sees the new password')
    assert.equal(await login(server.url, ADMIN.password), 401)

    assert.equal(await server.stop(), 0)
    server = await startServer(environment.env)
    assert.equal(await login(server.url, 'a-new-admin-pass'), 200, 'the reset survives a restart')
  })
})

describe('npm run reset', () => {
  let dataDir: string | undefined
  after(() => (dataDir ? rm(dataDir, { recursive: true, force: true }) : undefined))

  it('asks for --yes, then deletes the embedded database and its generated secret, and refuses DATABASE_URL', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mini-crm-reset-'))
    await cp(await embeddedTemplatePath(), join(dataDir, 'postgres'), { recursive: true })
    await writeFile(join(dataDir, 'jwt-secret'), 'a-secret\n')
    const env = { DATA_DIR: dataDir, DATABASE_URL: '' }

    const asked = await runTs('scripts/reset.ts', env)
    assert.notEqual(asked.code, 0)
    assert.match(asked.output, /npm run reset -- --yes/)
    assert.deepEqual((await readdir(dataDir)).sort(), ['jwt-secret', 'postgres'], 'nothing deleted without --yes')

    const server = await runTs(
      'scripts/reset.ts',
      { ...env, DATABASE_URL: 'postgres://crm@localhost/crm' },
      { args: ['--yes'] },
    )
    assert.notEqual(server.code, 0)
    assert.match(server.output, /DATABASE_URL is set/)

    const done = await runTs('scripts/reset.ts', env, { args: ['--yes'] })
    assert.equal(done.code, 0, done.output)
    assert.deepEqual(await readdir(dataDir), [], 'the database and the secret are gone')
  })
})
