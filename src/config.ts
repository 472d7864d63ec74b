import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import envSchema from 'env-schema'
import type { CountryCode } from 'libphonenumber-js'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './auth/passwords.js'
import { isCountryCode } from './phone.js'

const DEFAULT_ADMIN_PASSWORD = 'admin123'
const MIN_PRODUCTION_SECRET_LENGTH = 32

const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  HOST: Type.String({ default: 'localhost', minLength: 1 }),
  PORT: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  PUBLIC_URL: Type.String({ default: 'http://localhost:8000', pattern: '^https?://' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  DB_POOL_SIZE: Type.Integer({ default: 10, minimum: 1, maximum: 200 }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100 }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 15000, minimum: 100 }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ default: 3600, minimum: 60, maximum: 86400 }),
  AUTH_CACHE_MS: Type.Integer({ default: 2000, minimum: 0, maximum: 5000 }),
  ADMIN_PASSWORD: Type.String({
    default: DEFAULT_ADMIN_PASSWORD,
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: PASSWORD_MAX_LENGTH,
  }),
  LOGIN_MAX_FAILURES_PER_USER: Type.Integer({ default: 5, minimum: 1 }),
  LOGIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({ default: 20, minimum: 1 }),
  LOGIN_THROTTLE_WINDOW_SECONDS: Type.Integer({ default: 900, minimum: 1 }),
  TRUST_PROXY: Type.Boolean({ default: false }),
  CORS_ORIGINS: Type.String({ default: '' }),
  BODY_LIMIT_BYTES: Type.Integer({ default: 1_048_576, minimum: 1024 }),
  DEFAULT_PHONE_REGION: Type.String({ default: 'VE', pattern: '^[A-Z]{2}$' }),
})

type Env = Static<typeof EnvSchema>

export interface Config {
  env: Env['NODE_ENV']
  host: string
  port: number
  publicUrl: string
  logLevel: string
  /** Unset means: run the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined
  dataDir: string
  dbPoolSize: number
  dbConnectTimeoutMs: number
  dbStatementTimeoutMs: number
  migrateOnStart: boolean
  jwtSecret: string | undefined
  accessTokenTtlSeconds: number
  authCacheMs: number
  adminPassword: string
  adminPasswordIsDefault: boolean
  login: { maxFailuresPerUser: number; maxFailuresPerAddress: number; windowSeconds: number }
  trustProxy: boolean
  corsOrigins: string[]
  bodyLimitBytes: number
  defaultPhoneRegion: CountryCode
}

export class ConfigError extends Error {}

/** Reads the environment (and `.env` when present), refusing a bad value with a message naming it. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, options: { dotenv?: boolean } = {}): Config {
  let env: Env
  try {
    env = envSchema<Env>({
      schema: structuredClone(EnvSchema),
      data: { ...source },
      env: false,
      dotenv: options.dotenv ?? true,
    })
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${(error as Error).message.replaceAll('env/', '')}`)
  }
  if (!isCountryCode(env.DEFAULT_PHONE_REGION)) {
    throw new ConfigError(
      `Invalid configuration: DEFAULT_PHONE_REGION ${env.DEFAULT_PHONE_REGION} is not a known country`,
    )
  }
  const config: Config = {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    publicUrl: env.PUBLIC_URL.replace(/\/+$/, ''),
    logLevel: env.LOG_LEVEL,
    databaseUrl: env.DATABASE_URL,
    dataDir: resolve(env.DATA_DIR),
    dbPoolSize: env.DB_POOL_SIZE,
    dbConnectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    dbStatementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
    migrateOnStart: env.MIGRATE_ON_START,
    jwtSecret: env.JWT_SECRET,
    accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
    authCacheMs: env.AUTH_CACHE_MS,
    adminPassword: env.ADMIN_PASSWORD,
    adminPasswordIsDefault: env.ADMIN_PASSWORD === DEFAULT_ADMIN_PASSWORD,
    login: {
      maxFailuresPerUser: env.LOGIN_MAX_FAILURES_PER_USER,
      maxFailuresPerAddress: env.LOGIN_MAX_FAILURES_PER_ADDRESS,
      windowSeconds: env.LOGIN_THROTTLE_WINDOW_SECONDS,
    },
    trustProxy: env.TRUST_PROXY,
    corsOrigins: env.CORS_ORIGINS.split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    defaultPhoneRegion: env.DEFAULT_PHONE_REGION as CountryCode,
  }
  if (config.env === 'production') {
    if (!config.jwtSecret || config.jwtSecret.length < MIN_PRODUCTION_SECRET_LENGTH) {
      throw new ConfigError(
        `Invalid configuration: JWT_SECRET must be set to at least ${MIN_PRODUCTION_SECRET_LENGTH} characters in production`,
      )
    }
    if (config.adminPasswordIsDefault) {
      throw new ConfigError('Invalid configuration: ADMIN_PASSWORD must not be the default password in production')
    }
  }
  return config
}

/** Where the embedded database keeps its files. */
export function embeddedDataDir(config: Config): string {
  return join(config.dataDir, 'postgres')
}

/**
 * Outside production a missing JWT_SECRET is generated once and kept in DATA_DIR,
 * so that tokens survive a restart.
 */
export async function resolveJwtSecret(config: Config): Promise<string> {
  if (config.jwtSecret) return config.jwtSecret
  const file = join(config.dataDir, 'jwt-secret')
  try {
    const stored = (await readFile(file, 'utf8')).trim()
    if (stored) return stored
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  await mkdir(config.dataDir, { recursive: true })
  const secret = randomBytes(48).toString('base64url')
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error) => {
    // Another process won the race: use its secret.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  })
  await chmod(file, 0o600)
  return (await readFile(file, 'utf8')).trim()
}
