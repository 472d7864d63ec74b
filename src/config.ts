import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import envSchema from 'env-schema'
import type { CountryCode } from 'libphonenumber-js'
import { preparePrivateFolder } from './db/data-dir.js'
import { DEFAULT_ADMIN_PASSWORD, type Env, EnvSchema } from './env.js'
import { StartupError } from './errors/startup.js'
import { defaultLogFormat, type LogFormat } from './logging.js'
import { isCurrency } from './money.js'
import { isCountryCode } from './phone.js'
import { isTimeZone } from './time-zone.js'

const MIN_PRODUCTION_SECRET_LENGTH = 32

export interface Config {
  env: Env['NODE_ENV']
  host: string
  port: number
  publicUrl: string
  logLevel: string
  logFormat: LogFormat
  /** Unset means: run the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined
  dataDir: string
  dbPoolSize: number
  dbConnectTimeoutMs: number
  dbStatementTimeoutMs: number
  /** How long a start waits for the database to answer. */
  dbWaitSeconds: number
  migrateOnStart: boolean
  jwtSecret: string | undefined
  accessTokenTtlSeconds: number
  authCacheMs: number
  adminPassword: string
  adminPasswordIsDefault: boolean
  login: { maxFailuresPerUser: number; maxFailuresPerAddress: number; windowSeconds: number }
  /** Web-form submissions per form and per client address within a window. */
  forms: { maxPerForm: number; maxPerAddress: number; windowSeconds: number }
  /** Fastify's trustProxy: false, a number of proxy hops, or the proxies' addresses and CIDRs. */
  trustProxy: false | number | string[]
  corsOrigins: string[]
  bodyLimitBytes: number
  /** An upload (an import's file) from which nothing arrives for this long is answered 408. */
  uploadIdleTimeoutMs: number
  /** What an uploaded zip file (an XLSX) may unpack to, in all, before it is refused with a 413. */
  uploadMaxInflatedBytes: number
  defaultPhoneRegion: CountryCode
  defaultLocale: 'es' | 'en'
  /** IANA name, checked at start. */
  defaultTimeZone: string
  defaultCurrency: string
  /** The local hour of the morning digest. */
  digestHour: number
  /** Unset: mails are written to the log. */
  smtpUrl: string | undefined
  mailFrom: string
  workers: boolean
  /** Events whose deliveries and mails are done are deleted, with them, after this many days. */
  eventRetentionDays: number
  workerPollMs: number
  /** The waits before each retry of a background job: its attempts are one more than these. */
  jobRetryDelaysMs: number[]
  webhookAllowPrivateNetworks: boolean
  webhookTimeoutMs: number
  /** GET /metrics: its bearer token on the API port, and/or a port of its own; neither: not served. */
  metrics: { token: string | undefined; port: number | undefined }
  /** Days a trashed client or lead is kept before the workers purge it. */
  trashRetentionDays: number
  /** Unset: the WhatsApp routes answer 404. */
  whatsapp: WhatsAppConfig | undefined
}

/** The WhatsApp Business Cloud API: all four secrets and ids are needed together. */
export interface WhatsAppConfig {
  /** What Meta must send back when it verifies the webhook URL. */
  verifyToken: string
  /** The app secret that signs each webhook POST (X-Hub-Signature-256). */
  appSecret: string
  /** The bearer token for the Graph API. */
  accessToken: string
  phoneNumberId: string
  /** The Graph API's base URL, with its version and without a trailing slash. */
  graphUrl: string
}

export class ConfigError extends StartupError {}

/** Reads the environment (and `.env` when present), refusing a bad value with a message naming it. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, options: { dotenv?: boolean } = {}): Config {
  let env: Env
  try {
    env = envSchema<Env>({
      schema: structuredClone(EnvSchema),
      // The environment wins over `.env`; an empty value (`DATABASE_URL=`, as .env.example has) means unset.
      data: { ...withoutEmpty(options.dotenv === false ? {} : readDotenv()), ...withoutEmpty(source) },
      env: false,
      dotenv: false,
    })
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${describeEnvErrors(error as EnvSchemaError)}`)
  }
  if (!isCountryCode(env.DEFAULT_PHONE_REGION)) {
    throw new ConfigError(
      `Invalid configuration: DEFAULT_PHONE_REGION ${env.DEFAULT_PHONE_REGION} is not a known country`,
    )
  }
  if (!isCurrency(env.DEFAULT_CURRENCY)) {
    throw new ConfigError(
      `Invalid configuration: DEFAULT_CURRENCY ${env.DEFAULT_CURRENCY} is not an ISO 4217 currency code`,
    )
  }
  if (!isTimeZone(env.DEFAULT_TIME_ZONE)) {
    throw new ConfigError(`Invalid configuration: DEFAULT_TIME_ZONE ${env.DEFAULT_TIME_ZONE} is not a known time zone`)
  }
  const config: Config = {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    publicUrl: (env.PUBLIC_URL ?? listeningUrl(env.HOST, env.PORT)).replace(/\/+$/, ''),
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT ?? defaultLogFormat(),
    databaseUrl: env.DATABASE_URL,
    dataDir: resolve(env.DATA_DIR),
    dbPoolSize: env.DB_POOL_SIZE,
    dbConnectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    dbStatementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
    dbWaitSeconds: env.DB_WAIT_SECONDS,
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
    forms: {
      maxPerForm: env.FORM_MAX_SUBMISSIONS_PER_FORM,
      maxPerAddress: env.FORM_MAX_SUBMISSIONS_PER_ADDRESS,
      windowSeconds: env.FORM_THROTTLE_WINDOW_SECONDS,
    },
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    corsOrigins: env.CORS_ORIGINS.split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    uploadIdleTimeoutMs: env.UPLOAD_IDLE_TIMEOUT_MS,
    uploadMaxInflatedBytes: env.UPLOAD_MAX_INFLATED_BYTES,
    defaultPhoneRegion: env.DEFAULT_PHONE_REGION as CountryCode,
    defaultLocale: env.DEFAULT_LOCALE,
    defaultTimeZone: env.DEFAULT_TIME_ZONE,
    defaultCurrency: env.DEFAULT_CURRENCY,
    digestHour: env.DIGEST_HOUR,
    smtpUrl: env.SMTP_URL || undefined,
    mailFrom: env.MAIL_FROM,
    workers: env.WORKERS,
    eventRetentionDays: env.EVENT_RETENTION_DAYS,
    workerPollMs: env.WORKER_POLL_MS,
    jobRetryDelaysMs: env.JOB_RETRY_DELAYS_SECONDS.split(',').map((seconds) => Math.round(Number(seconds) * 1000)),
    webhookAllowPrivateNetworks: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    webhookTimeoutMs: env.WEBHOOK_TIMEOUT_MS,
    metrics: { token: env.METRICS_TOKEN, port: env.METRICS_PORT },
    trashRetentionDays: env.TRASH_RETENTION_DAYS,
    whatsapp: whatsappConfig(env),
  }
  if (config.metrics.port !== undefined && config.metrics.port !== 0 && config.metrics.port === config.port) {
    throw new ConfigError(`Invalid configuration: METRICS_PORT must differ from PORT (${config.port})`)
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

const WHATSAPP_VARIABLES = [
  'WHATSAPP_VERIFY_TOKEN',
  'WHATSAPP_APP_SECRET',
  'WHATSAPP_ACCESS_TOKEN',
  'WHATSAPP_PHONE_NUMBER_ID',
] as const

/** None of the four: WhatsApp is off. Some but not all: a mistake worth stopping the start for. */
function whatsappConfig(env: Env): WhatsAppConfig | undefined {
  const missing = WHATSAPP_VARIABLES.filter((name) => env[name] === undefined)
  if (missing.length === WHATSAPP_VARIABLES.length) return undefined
  if (missing.length > 0) {
    throw new ConfigError(
      `Invalid configuration: WhatsApp needs ${WHATSAPP_VARIABLES.join(', ')} together; missing ${missing.join(', ')}`,
    )
  }
  return {
    verifyToken: env.WHATSAPP_VERIFY_TOKEN as string,
    appSecret: env.WHATSAPP_APP_SECRET as string,
    accessToken: env.WHATSAPP_ACCESS_TOKEN as string,
    phoneNumberId: env.WHATSAPP_PHONE_NUMBER_ID as string,
    graphUrl: env.WHATSAPP_GRAPH_URL.replace(/\/+$/, ''),
  }
}

function readDotenv(): Record<string, string> {
  try {
    return parseEnv(readFileSync('.env', 'utf8')) as Record<string, string>
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError(`Cannot read .env: ${(error as Error).message}`)
  }
}

function withoutEmpty(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  )
}

interface EnvSchemaError extends Error {
  errors?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }>
}

/** One sentence per bad variable, naming it and, for a choice, the values it may take. */
function describeEnvErrors(error: EnvSchemaError): string {
  if (!error.errors?.length) return error.message
  return error.errors
    .map((entry) => {
      const name = entry.instancePath.replace(/^\//, '')
      if (entry.keyword === 'enum') {
        return `${name} must be one of ${(entry.params.allowedValues as string[]).join(', ')}`
      }
      return `${name} ${entry.message}`
    })
    .join('; ')
}

/** The address the API answers on, when PUBLIC_URL does not say otherwise. */
export function listeningUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' ? 'localhost' : host
  return `http://${isIP(reachable) === 6 ? `[${reachable}]` : reachable}:${port}`
}

/**
 * `true` would take the leftmost X-Forwarded-For entry, which the client writes itself. The number
 * of proxies in front, or their addresses, make Fastify take the entry the nearest trusted proxy wrote.
 */
function parseTrustProxy(value: string): false | number | string[] {
  if (value === 'false') return false
  if (value === 'true') {
    throw new ConfigError(
      'Invalid configuration: TRUST_PROXY=true would trust addresses any client can forge: write the number of proxies in front of the API (TRUST_PROXY=1) or their addresses or CIDRs (TRUST_PROXY=10.0.0.0/8,192.168.1.10)',
    )
  }
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    if (hops < 1 || hops > 10) throw new ConfigError('Invalid configuration: TRUST_PROXY hops must be 1–10')
    return hops
  }
  const entries = value.split(',').map((entry) => entry.trim())
  for (const entry of entries) {
    const [address = '', prefix, ...rest] = entry.split('/')
    const family = isIP(address)
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32))
    if (!family || !prefixOk || rest.length > 0) {
      throw new ConfigError(
        `Invalid configuration: TRUST_PROXY ${entry} is neither a number of proxies nor an IP address or CIDR`,
      )
    }
  }
  return entries
}

/**
 * Outside production a missing JWT_SECRET is generated once and kept in DATA_DIR,
 * so that tokens survive a restart.
 */
export async function resolveJwtSecret(config: Config): Promise<string> {
  if (config.jwtSecret) return config.jwtSecret
  await preparePrivateFolder(config.dataDir)
  const file = join(config.dataDir, 'jwt-secret')
  try {
    const stored = (await readFile(file, 'utf8')).trim()
    if (stored) return stored
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const secret = randomBytes(48).toString('base64url')
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error) => {
    // Another process won the race: use its secret.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  })
  await chmod(file, 0o600)
  return (await readFile(file, 'utf8')).trim()
}
