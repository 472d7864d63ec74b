/**
 * `npm run bench`: load-tests the API against a real PostgreSQL (DATABASE_URL) and compares every
 * route with its floor, the same SQL sent by a bare Fastify + pg server (scripts/bench/floor.ts).
 *
 *   DATABASE_URL=postgres://... npm run bench -- [--clients N] [--leads M] [--duration S]
 *     [--connections C] [--json] [--skip-seed]
 *
 * 1. Migrates, and seeds (scripts/seed/) whatever is missing for N clients and M leads (data.ts).
 * 2. Makes sure of a bench admin (`bench.admin`, a new password each run) and a sales user with leads.
 * 3. Captures, in-process, the statements the API's services send for one input of each route
 *    (capture.ts), hands them to the floor, and checks with a traced request that the floor sends
 *    the same (checks.ts).
 * 4. Runs EXPLAIN (ANALYZE, BUFFERS) on each read's statements (checks.ts).
 * 5. Starts the API (`node --import tsx src/server.ts`, production mode) and the floor, each with a
 *    pool of C connections, and measures each scenario (scenarios.ts) with autocannon (measure.ts):
 *    C connections for throughput and latency under load, then one connection for the latency of a
 *    request alone.
 * Logs go to stderr; stdout gets the tables (report.ts), or with --json one JSON document.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { EnvSchema } from '../../src/env.js'
import { countHistoricResponses } from '../../src/pipeline/first-response.js'
import { type ServerProcess, startServer } from '../../tests/helpers/server.js'
import { captureStatements } from './capture.js'
import { checkFloorSql, explainReads } from './checks.js'
import { log, ROLES } from './common.js'
import { countRows, monthRange, prepareTasks, prepareUsers, sample, seedMissing } from './data.js'
import type { FloorSpec, Role } from './floor.js'
import { drain, type HttpRequest, measure } from './measure.js'
import { type Options, parseOptions, USAGE } from './options.js'
import { fixed, printReport, type Report } from './report.js'
import { READ_RATIO_TARGET, type ScenarioResult, scenarios, WRITE_RATIO_TARGET } from './scenarios.js'

async function main(): Promise<void> {
  const started = performance.now()
  let options: Options
  try {
    options = parseOptions()
  } catch (error) {
    console.error((error as Error).message)
    console.error(USAGE)
    process.exitCode = 2
    return
  }
  const url = process.env.DATABASE_URL
  if (!url || !/^postgres(ql)?:\/\//.test(url)) {
    console.error('DATABASE_URL must name a PostgreSQL server (postgres://...): the benchmark needs a real one.')
    console.error(USAGE)
    process.exitCode = 2
    return
  }

  const handle = openDatabase({ url, poolSize: 4, connectTimeoutMs: 10_000, statementTimeoutMs: 2 * 3600_000 })
  const db = handle.db
  const children: ServerProcess[] = []
  const workDir = await mkdtemp(join(os.tmpdir(), 'crm-bench-'))
  const stopAll = async () => {
    await Promise.all(children.map((child) => child.stop()))
  }
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    log('migrating')
    await migrate(url)
    await seedMissing(db, options)
    // Whatever the API's housekeeping would count during the runs, counted before them.
    const counted = await countHistoricResponses(db, 10_000)
    if (counted > 0) log(`counted the business seconds of ${counted} first responses`)
    await sql`analyze`.execute(db)
    const data = await countRows(db)
    const users = await prepareUsers(db)
    await prepareTasks(db, users)
    const samples = await sample(db, users)
    log(`sales user ${users.sales.username}; search fragments ${samples.fragments.join(', ')}`)
    log(`full-text searches ${samples.fullText.join(', ')}`)

    log('capturing the SQL the API sends')
    // The API below gets no DEFAULT_TIME_ZONE of its own: it has the one of this environment or the default.
    const timeZone = process.env.DEFAULT_TIME_ZONE ?? (EnvSchema.properties.DEFAULT_TIME_ZONE.default as string)
    const statements = await captureStatements(url, users, samples, timeZone)
    const spec: FloorSpec = {
      sentinels: samples.sentinels,
      users: {
        admin: { id: users.admin.id, username: users.admin.username },
        sales: { id: users.sales.id, username: users.sales.username },
      },
      statements,
    }
    const specFile = join(workDir, 'floor-spec.json')
    await writeFile(specFile, JSON.stringify(spec))

    log('explaining the reads')
    const plans = await explainReads(url, spec, samples)

    const loadAtStart = Math.round((os.loadavg()[0] ?? 0) * 100) / 100
    if (loadAtStart > 0.5 * os.cpus().length) log(`the load average is ${loadAtStart}: figures will be low and noisy`)
    const poolSize = String(options.connections)
    log(`starting the API and the floor, each with a pool of ${poolSize}`)
    const api = await startServer(
      {
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        DATABASE_URL: url,
        DB_POOL_SIZE: poolSize,
        JWT_SECRET: randomBytes(48).toString('base64url'),
        ADMIN_PASSWORD: randomBytes(18).toString('base64url'),
        // Every attempt counts against the throttle while its password is checked, so C concurrent
        // right logins from one address would be refused past the default 20 (and 5 a user).
        LOGIN_MAX_FAILURES_PER_USER: '100000',
        LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
      },
      { readyPath: '/ready', timeoutMs: 120_000 },
    )
    children.push(api)
    const floor = await startServer(
      { NODE_ENV: 'production', DATABASE_URL: url, DB_POOL_SIZE: poolSize, BENCH_FLOOR_SPEC: specFile },
      { script: 'scripts/bench/floor.ts', readyPath: '/ready', timeoutMs: 120_000 },
    )
    children.push(floor)

    const sqlChecks = await checkFloorSql(floor, spec)
    for (const check of sqlChecks.filter((each) => !each.same)) {
      log(`WARNING: the floor's SQL differs from the API's for ${check.scenario}/${check.role}:\n${check.detail}`)
    }

    const tokens = {} as Record<Role, string>
    for (const role of ROLES) {
      const response = await fetch(`${api.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: users[role].username, password: users[role].password }),
      })
      const body = (await response.json()) as { access_token?: string }
      if (!response.ok || !body.access_token) throw new Error(`login as ${users[role].username}: ${response.status}`)
      tokens[role] = body.access_token
    }

    const results: ScenarioResult[] = []
    const warmup = Math.max(1, Math.round(options.duration / 5))
    const singleDuration = Math.max(4, Math.ceil(options.duration / 2))
    const chosen = scenarios(samples, users).filter(
      (scenario) => options.only.length === 0 || options.only.includes(scenario.id),
    )
    for (const scenario of chosen) {
      const apiHeaders: Record<string, string> =
        scenario.kind === 'login' ? {} : { authorization: `Bearer ${tokens[scenario.role]}` }
      const run = async (
        base: string,
        make: () => HttpRequest,
        headers: Record<string, string>,
        connections: number,
        duration: number,
      ) => {
        await measure(base, make, headers, connections, connections === 1 ? 1 : warmup)
        await drain(db)
        const figures = await measure(base, make, headers, connections, duration)
        await drain(db)
        return figures
      }
      log(`${scenario.label} as ${scenario.role}`)
      const loadBefore = os.loadavg()[0] ?? 0
      // One connection first: how long a request takes alone tells how long a loaded run must last
      // for C of them, queued on the CPUs, to be answered more than a couple of times (at most 3 × --duration).
      const apiSingle = scenario.single ? await run(api.url, scenario.api, apiHeaders, 1, singleDuration) : undefined
      const floorSingle = scenario.single ? await run(floor.url, scenario.floor, {}, 1, singleDuration) : undefined
      const aloneMs = Math.max(apiSingle?.latency_ms.mean || 0, floorSingle?.latency_ms.mean || 0)
      const loadedDuration = Math.min(
        Math.max(options.duration, options.duration * 3),
        Math.max(options.duration, Math.ceil((2.5 * aloneMs * options.connections) / 1000 / os.cpus().length)),
      )
      const apiFigures = await run(api.url, scenario.api, apiHeaders, options.connections, loadedDuration)
      const floorFigures = await run(floor.url, scenario.floor, {}, options.connections, loadedDuration)
      const floorFull = scenario.floorFull
        ? await run(floor.url, scenario.floorFull, {}, options.connections, loadedDuration)
        : undefined
      const ratio = apiFigures.rps / floorFigures.rps
      const ratioMin = scenario.kind === 'read' ? READ_RATIO_TARGET : WRITE_RATIO_TARGET
      const result: ScenarioResult = {
        id: scenario.id,
        scenario: scenario.label,
        role: scenario.role,
        kind: scenario.kind,
        api: apiFigures,
        floor: floorFigures,
        ...(floorFull && { floor_full: floorFull, ratio_full: apiFigures.rps / floorFull.rps }),
        ...(apiSingle && { api_single: apiSingle }),
        ...(floorSingle && { floor_single: floorSingle }),
        ratio,
        // The machine's 1-minute load average before and after the scenario: how busy it was meanwhile.
        load_1m: [loadBefore, os.loadavg()[0] ?? 0].map((load) => Math.round(load * 10) / 10) as [number, number],
        targets: {
          ...(scenario.p99TargetMs !== undefined && {
            p99_ms: scenario.p99TargetMs,
            p99_met_under_load: apiFigures.latency_ms.p99 < scenario.p99TargetMs,
            ...(apiSingle && { p99_met_single: apiSingle.latency_ms.p99 < scenario.p99TargetMs }),
          }),
          ratio_min: ratioMin,
          ratio_met: ratio >= ratioMin,
        },
      }
      results.push(result)
      log(
        `  API ${fixed(apiFigures.rps)} req/s p99 ${apiFigures.latency_ms.p99} ms (non-2xx ${apiFigures.non2xx}, errors ${apiFigures.errors}); ` +
          `floor ${fixed(floorFigures.rps)} req/s p99 ${floorFigures.latency_ms.p99} ms; ratio ${fixed(ratio, 2)}; ` +
          `load ${result.load_1m.join(' → ')}` +
          (apiSingle
            ? `; alone: API p99 ${apiSingle.latency_ms.p99} ms, floor p99 ${floorSingle?.latency_ms.p99} ms`
            : ''),
      )
      for (const figures of [apiFigures, floorFigures, floorFull, apiSingle, floorSingle]) {
        if (figures && figures.non2xx_samples.length > 0) log(`  non-2xx: ${figures.non2xx_samples.join(' | ')}`)
      }
    }
    if (api.output().trim()) log(`API output (last lines):\n${api.output().slice(-2000)}`)

    const version = await sql<{ version: string }>`select version()`.execute(db)
    const settings = await sql<{ name: string; setting: string; unit: string | null }>`
      select name, setting, unit from pg_settings
      where name in ('shared_buffers', 'work_mem', 'effective_cache_size', 'max_connections', 'random_page_cost', 'jit')`.execute(
      db,
    )
    const report: Report = {
      options,
      machine: {
        cpus: os.cpus().length,
        cpu_model: os.cpus()[0]?.model ?? 'unknown',
        loadavg_1m_at_start: loadAtStart,
        memory_gb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        postgres: version.rows[0]?.version ?? 'unknown',
        postgres_settings: Object.fromEntries(
          settings.rows.map((setting) => [setting.name, `${setting.setting}${setting.unit ? ` ${setting.unit}` : ''}`]),
        ),
      },
      data,
      samples: {
        fragments: samples.fragments,
        client_ids: samples.clientIds.length,
        flip_pool: samples.flipPool.length,
        month: monthRange(),
      },
      users: { admin: users.admin.username, sales: users.sales.username },
      results,
      sql_checks: sqlChecks,
      plans,
      sql: statements,
      seconds: Math.round((performance.now() - started) / 1000),
    }
    if (options.json) console.log(JSON.stringify(report, null, 2))
    else printReport(report)
  } finally {
    await stopAll()
    await handle.close()
    await rm(workDir, { recursive: true, force: true })
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

await main()
