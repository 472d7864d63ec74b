import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { unaccent } from '@electric-sql/pglite/contrib/unaccent'
let t0 = Date.now()
const db = await PGlite.create({ extensions: { pg_trgm, unaccent } })
await db.exec('create extension pg_trgm; create table t(x int)')
console.log('create', Date.now() - t0); t0 = Date.now()
const dump = await db.dumpDataDir('gzip')
console.log('dump', Date.now() - t0, dump.size); t0 = Date.now()
await db.close()
const db2 = await PGlite.create({ loadDataDir: dump, extensions: { pg_trgm, unaccent } })
console.log('load', Date.now() - t0, (await db2.query('select count(*) from t')).rows); t0 = Date.now()
