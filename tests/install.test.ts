import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { root } from './helpers/server.js'

// semver is in the tree through several packages, without types of its own.
const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean }

// The oldest Node the README names: `npm install` on it must print no EBADENGINE warning.
const OLDEST_NODE = '20.19.0'

describe('npm install on the oldest supported Node', () => {
  it('installs no package whose engines exclude it', async () => {
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>
    }
    const own = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }
    assert.ok(semver.satisfies(OLDEST_NODE, own.engines.node), own.engines.node)
    const refused = Object.entries(lock.packages)
      .filter(([, entry]) => {
        const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node
        return range !== undefined && !semver.satisfies(OLDEST_NODE, range)
      })
      .map(([path, entry]) => `${path}@${entry.version} wants node ${(entry.engines as { node: string }).node}`)
    assert.deepEqual(refused, [])
  })
})
