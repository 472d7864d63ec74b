/**
 * Prints the OpenAPI document the API serves at /openapi.json, built from the route schemas,
 * without starting a server or touching a database. Usage: tsx scripts/openapi.ts [out-file]
 */
import { writeFile } from 'node:fs/promises'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/database.js'

const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', JWT_SECRET: 'document-only' })
// pg connects lazily: this pool is never used, since no request is made.
const database = openDatabase({
  url: 'postgres://127.0.0.1:1/unused',
  poolSize: 1,
  connectTimeoutMs: 100,
  statementTimeoutMs: 100,
})
const app = await buildApp({ config, db: database.db, jwtSecret: 'document-only' })
await app.ready()
const document = `${JSON.stringify(app.swagger(), null, 2)}\n`
await app.close()
await database.close()
const out = process.argv[2]
if (out) await writeFile(out, document)
else process.stdout.write(document)
