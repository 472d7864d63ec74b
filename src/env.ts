// The environment the API reads, as a schema: validation, defaults, and the text of
// docs/configuration.md and .env.example (npm run config:docs) come from here.
import { type Static, Type } from '@sinclair/typebox'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './auth/passwords.js'
import { USER_LOCALES } from './db/enums.js'
import type { LogFormat } from './logging.js'

export const DEFAULT_ADMIN_PASSWORD = 'admin123'

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

export type Env = Static<typeof EnvSchema>
