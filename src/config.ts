import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { type Static, Type } from '@sinclair/typebox'
import envSchema from 'env-schema'
import type { CountryCode } from 'libphonenumber-js'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './auth/passwords.js'
import { preparePrivateFolder } from './db/data-dir.js'
import { USER_LOCALES } from './db/enums.js'
import { StartupError } from './errors/startup.js'
import { defaultLogFormat, type LogFormat } from './logging.js'
import { isCountryCode } from './phone.js'

const DEFAULT_ADMIN_PASSWORD = 'admin123'
const MIN_PRODUCTION_SECRET_LENGTH = 32

/** One of a few strings: a single error that lists them, where a union of literals gives one per literal. */
function OneOf<const T extends readonly string[]>(values: T, defaultValue: T[number], description: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], default: defaultValue, description })
}

/** Every variable the API reads: docs/configuration.md and .env.example are generated from it. */
export const EnvSchema = Type.Object({
  NODE_ENV: OneOf(
    ['development', 'production', 'test'] as const,
    'development',
    'Production refuses a short JWT_SECRET and the default ADMIN_PASSWORD.',
  ),
  HOST: Type.String({ default: 'localhost', minLength: 1, description: 'The address the server listens on.' }),
  PORT: Type.Integer({
    default: 8000,
    minimum: 0,
    maximum: 65535,
    description: 'The port the server listens on (0: any free port).',
  }),
  PUBLIC_URL: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'The address people reach the API on, for the links in notification mails. Empty: http://HOST:PORT.',
    }),
  ),
  LOG_LEVEL: OneOf(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    'info',
    'How much the server logs.',
  ),
  LOG_FORMAT: Type.Optional(
    Type.Unsafe<LogFormat>({
      type: 'string',
      enum: ['pretty', 'json'],
      description:
        'pretty (readable lines) or json (one object per line). Unset: pretty when stdout is a terminal, else json.',
    }),
  ),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description:
        'A PostgreSQL server, e.g. postgres://crm:secret@localhost:5432/crm. Unset: the embedded database under DATA_DIR.',
    }),
  ),
  DATA_DIR: Type.String({
    default: './data',
    minLength: 1,
    description:
      'The embedded database (served on a Unix socket inside it, locked by the running server) and the generated JWT secret.',
  }),
  DB_POOL_SIZE: Type.Integer({
    default: 10,
    minimum: 1,
    maximum: 200,
    description: 'Connections to a real server; the embedded database always uses one.',
  }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({
    default: 2000,
    minimum: 100,
    description: 'How long a new database connection may take before the request gets a 503.',
  }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({
    default: 15000,
    minimum: 100,
    description: 'The longest a statement may run on a real server before PostgreSQL cancels it.',
  }),
  DB_WAIT_SECONDS: Type.Integer({
    default: 30,
    minimum: 0,
    maximum: 3600,
    description: 'How long a start waits for the database to answer before giving up.',
  }),
  MIGRATE_ON_START: Type.Boolean({ default: true, description: 'Apply pending migrations when the server starts.' }),
  JWT_SECRET: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'HS256 signing key. Unset outside production: generated once and kept in DATA_DIR/jwt-secret.',
    }),
  ),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({
    default: 3600,
    minimum: 60,
    maximum: 86400,
    description: 'How long an access token is valid.',
  }),
  AUTH_CACHE_MS: Type.Integer({
    default: 2000,
    minimum: 0,
    maximum: 5000,
    description:
      "How long a user's row (role, is_active, token version) may be trusted before it is read again; at most 5000.",
  }),
  ADMIN_PASSWORD: Type.String({
    default: DEFAULT_ADMIN_PASSWORD,
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: PASSWORD_MAX_LENGTH,
    description: 'The password of the user "admin" that the first start creates when there is no user at all.',
  }),
  LOGIN_MAX_FAILURES_PER_USER: Type.Integer({
    default: 5,
    minimum: 1,
    description: 'Failed logins allowed per username within the window, before 429.',
  }),
  LOGIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({
    default: 20,
    minimum: 1,
    description: 'Failed logins allowed per client address within the window, before 429.',
  }),
  LOGIN_THROTTLE_WINDOW_SECONDS: Type.Integer({
    default: 900,
    minimum: 1,
    description: 'The window of the login throttle.',
  }),
  FORM_MAX_SUBMISSIONS_PER_FORM: Type.Integer({
    default: 100,
    minimum: 1,
    description: 'Web-form submissions (POST /f/{key}) allowed per form within the window, before 429.',
  }),
  FORM_MAX_SUBMISSIONS_PER_ADDRESS: Type.Integer({
    default: 5,
    minimum: 1,
    description: 'Web-form submissions allowed per client address within the window, before 429.',
  }),
  FORM_THROTTLE_WINDOW_SECONDS: Type.Integer({
    default: 600,
    minimum: 1,
    description: 'The window of the web-form throttle.',
  }),
  TRUST_PROXY: Type.String({
    default: 'false',
    description:
      "Behind reverse proxies: their number (1) or their addresses and CIDRs (10.0.0.0/8,192.168.1.10), whose X-Forwarded-For entries are believed. false: the connection's address. true is refused (clients could forge it).",
  }),
  CORS_ORIGINS: Type.String({
    default: '',
    description: 'Comma-separated origins allowed by CORS; empty turns CORS off.',
  }),
  BODY_LIMIT_BYTES: Type.Integer({
    default: 1_048_576,
    minimum: 1024,
    description: 'The largest JSON or form body accepted (413 past it); uploads have their own limit.',
  }),
  UPLOAD_IDLE_TIMEOUT_MS: Type.Integer({
    default: 30_000,
    minimum: 100,
    description:
      "An import's upload from which nothing arrives for this long is answered 408 (the file is received whole first).",
  }),
  UPLOAD_MAX_INFLATED_BYTES: Type.Integer({
    default: 200 * 1024 * 1024,
    minimum: 1024,
    description: 'What an uploaded XLSX (a zip) may unpack to, in all, before it is refused with 413.',
  }),
  DEFAULT_PHONE_REGION: Type.String({
    default: 'VE',
    pattern: '^[A-Z]{2}$',
    description: 'The country of phone numbers written without a country prefix (ISO 3166 alpha-2).',
  }),
  DEFAULT_LOCALE: OneOf(
    USER_LOCALES,
    'es',
    'The locale (es | en) of a new user given none: the language of their notification mails.',
  ),
  SMTP_URL: Type.Optional(
    Type.String({
      pattern: '^smtps?://',
      description:
        'SMTP server for notification mails, e.g. smtp://user:pass@mail.example.com:587. Empty: mails are written to the log.',
    }),
  ),
  MAIL_FROM: Type.String({
    default: 'Mini CRM <no-reply@localhost>',
    minLength: 3,
    description: 'The sender of notification mails.',
  }),
  WORKERS: Type.Boolean({
    default: true,
    description:
      'Run the background jobs (events, webhooks, mails) inside npm start; false leaves them to npm run worker.',
  }),
  WORKER_POLL_MS: Type.Integer({
    default: 500,
    minimum: 10,
    maximum: 60_000,
    description: 'How often idle workers look for work written by another instance.',
  }),
  JOB_RETRY_DELAYS_SECONDS: Type.String({
    default: '5,60,600,3600,21600,86400',
    pattern: '^\\d+(\\.\\d+)?(,\\d+(\\.\\d+)?)*$',
    description:
      'Waits before each retry of a webhook delivery or a mail (seconds); one attempt more than there are waits.',
  }),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: Type.Boolean({
    default: false,
    description: 'Allow webhook URLs on loopback and private networks, and http: (local receivers, tests).',
  }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({
    default: 10_000,
    minimum: 100,
    maximum: 10_000,
    description: 'A delivery answered 2xx within this time is a success (at most 10000).',
  }),
  TRASH_RETENTION_DAYS: Type.Integer({
    default: 30,
    minimum: 1,
    maximum: 3650,
    description: 'Days a trashed client or lead is kept before the background workers delete it for good.',
  }),
  WHATSAPP_VERIFY_TOKEN: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "WhatsApp Business (Cloud API), on when its four settings are set: the token you type in Meta's webhook settings, answered back when Meta verifies the URL.",
    }),
  ),
  WHATSAPP_APP_SECRET: Type.Optional(
    Type.String({ minLength: 1, description: 'The app secret (App settings > Basic) that signs each webhook POST.' }),
  ),
  WHATSAPP_ACCESS_TOKEN: Type.Optional(
    Type.String({
      minLength: 1,
      description: "A system user's access token with whatsapp_business_messaging, for sending.",
    }),
  ),
  WHATSAPP_PHONE_NUMBER_ID: Type.Optional(
    Type.String({
      pattern: '^\\d{1,32}$',
      description: "The sending number's id (WhatsApp > API Setup), not the phone number itself.",
    }),
  ),
  WHATSAPP_GRAPH_URL: Type.String({
    default: 'https://graph.facebook.com/v21.0',
    pattern: '^https?://',
    description: "Meta's Graph API, with its version.",
  }),
  EVENT_RETENTION_DAYS: Type.Integer({
    default: 30,
    minimum: 1,
    description: 'Days an event is kept once its deliveries and mails are done (then deleted with them).',
  }),
})

type Env = Static<typeof EnvSchema>

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
    smtpUrl: env.SMTP_URL || undefined,
    mailFrom: env.MAIL_FROM,
    workers: env.WORKERS,
    eventRetentionDays: env.EVENT_RETENTION_DAYS,
    workerPollMs: env.WORKER_POLL_MS,
    jobRetryDelaysMs: env.JOB_RETRY_DELAYS_SECONDS.split(',').map((seconds) => Math.round(Number(seconds) * 1000)),
    webhookAllowPrivateNetworks: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    webhookTimeoutMs: env.WEBHOOK_TIMEOUT_MS,
    trashRetentionDays: env.TRASH_RETENTION_DAYS,
    whatsapp: whatsappConfig(env),
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
