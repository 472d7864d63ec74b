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
    '`production` refuses a `JWT_SECRET` shorter than 32 characters and the default `ADMIN_PASSWORD`.',
  ),
  HOST: Type.String({ default: 'localhost', minLength: 1, description: 'Where to listen: the address.' }),
  PORT: Type.Integer({
    default: 8000,
    minimum: 0,
    maximum: 65535,
    description: 'Where to listen: the port (0: any free one).',
  }),
  PUBLIC_URL: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description:
        'The address in the links of notification mails (`localhost` for `HOST=0.0.0.0`); the OpenAPI document names the server relatively (`/`), so Swagger UI works on whatever host it is opened.',
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
        '`pretty`: one readable, coloured line per entry; `json`: one JSON object per line, for log collectors.',
    }),
  ),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description: 'A PostgreSQL server; unset runs the embedded database.',
    }),
  ),
  DATA_DIR: Type.String({
    default: './data',
    minLength: 1,
    description: 'The embedded database (its files, its Unix socket, its lock) and the generated JWT secret.',
  }),
  DB_POOL_SIZE: Type.Integer({
    default: 10,
    minimum: 1,
    maximum: 200,
    description: 'Connections to a real server (the embedded database uses one).',
  }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({
    default: 2000,
    minimum: 100,
    description: 'How long a request waits for a connection before a 503.',
  }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({
    default: 15000,
    minimum: 0,
    description:
      "The longest a statement may run, sent when connecting. 0: none sent, the server's own applies: behind PgBouncer, which refuses it at connect, set it on the role instead (`ALTER ROLE crm SET statement_timeout = '15s'`).",
  }),
  DB_WAIT_SECONDS: Type.Integer({
    default: 30,
    minimum: 0,
    maximum: 3600,
    description: 'How long a start waits for the database, saying so, before it gives up.',
  }),
  MIGRATE_ON_START: Type.Boolean({ default: true, description: 'Apply pending migrations at start.' }),
  JWT_SECRET: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'HS256 key; outside production a missing one is generated once into `DATA_DIR/jwt-secret`.',
    }),
  ),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({
    default: 3600,
    minimum: 60,
    maximum: 86400,
    description: 'Token lifetime.',
  }),
  AUTH_CACHE_MS: Type.Integer({
    default: 2000,
    minimum: 0,
    maximum: 5000,
    description:
      "How long a user's role, activity and token version may be trusted before they are read again (≤ 5000).",
  }),
  ADMIN_PASSWORD: Type.String({
    default: DEFAULT_ADMIN_PASSWORD,
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: PASSWORD_MAX_LENGTH,
    description: 'The password of the `admin` that the first start creates.',
  }),
  LOGIN_MAX_FAILURES_PER_USER: Type.Integer({
    default: 5,
    minimum: 1,
    description: 'Failed logins per username within the window before 429.',
  }),
  LOGIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({
    default: 20,
    minimum: 1,
    description: 'Failed logins per client address within the window before 429.',
  }),
  LOGIN_THROTTLE_WINDOW_SECONDS: Type.Integer({
    default: 900,
    minimum: 1,
    description: 'The throttling window, started by the first failure.',
  }),
  FORM_MAX_SUBMISSIONS_PER_FORM: Type.Integer({
    default: 100,
    minimum: 1,
    description: 'Web-form submissions a form takes (valid ones) within the window before 429.',
  }),
  FORM_MAX_SUBMISSIONS_PER_ADDRESS: Type.Integer({
    default: 5,
    minimum: 1,
    description: 'Web-form posts per client address (all forms, valid or not) within the window before 429.',
  }),
  FORM_THROTTLE_WINDOW_SECONDS: Type.Integer({
    default: 600,
    minimum: 1,
    description: 'The web-form throttling window, started by the first submission.',
  }),
  TRUST_PROXY: Type.String({
    default: 'false',
    description:
      'Behind reverse proxies: their number (`1`) or addresses/CIDRs (`10.0.0.0/8`), whose `X-Forwarded-For` entries are believed; `true` is refused.',
  }),
  CORS_ORIGINS: Type.String({
    default: '',
    description: 'Comma-separated origins allowed by CORS; empty means no CORS headers at all.',
  }),
  BODY_LIMIT_BYTES: Type.Integer({
    default: 1_048_576,
    minimum: 1024,
    description: 'Larger bodies get 413.',
  }),
  UPLOAD_IDLE_TIMEOUT_MS: Type.Integer({
    default: 30_000,
    minimum: 100,
    description: "An import's upload from which nothing arrives for this long gets 408.",
  }),
  UPLOAD_MAX_INFLATED_BYTES: Type.Integer({
    default: 200 * 1024 * 1024,
    minimum: 1024,
    description: 'An uploaded XLSX that unpacks to more (all entries together) gets 413.',
  }),
  DEFAULT_PHONE_REGION: Type.String({
    default: 'VE',
    pattern: '^[A-Z]{2}$',
    description: 'The country of phone numbers written without a country prefix.',
  }),
  DEFAULT_CURRENCY: Type.String({
    default: 'USD',
    pattern: '^[A-Z]{3}$',
    description:
      'The ISO 4217 code (`USD`, `EUR`, `VES`) of a lead created without a `currency`. Leads written outside the API (seed data, leads older than deal values) have `USD`.',
  }),
  DEFAULT_TIME_ZONE: Type.String({
    default: 'America/Caracas',
    minLength: 1,
    description:
      'The IANA time zone (`America/Caracas`, `Europe/Madrid`, `UTC`) of every user whose `time_zone` is null (a new user given none), and of the pipeline settings until an admin sets one: where "today" starts and business hours are counted.',
  }),
  DIGEST_HOUR: Type.Integer({
    default: 8,
    minimum: 0,
    maximum: 23,
    description:
      "The local hour (0–23, in each user's `time_zone`) during which users who turned `daily_digest` on get their morning digest mail.",
  }),
  DEFAULT_LOCALE: OneOf(
    USER_LOCALES,
    'es',
    'The `locale` (`es` or `en`) of a new user who is given none: the language of their mails.',
  ),
  SMTP_URL: Type.Optional(
    Type.String({
      pattern: '^smtps?://',
      description:
        'Where mails go, e.g. `smtp://user:pass@mail.example.com:587` or `smtps://…:465`; unset writes each mail to the log at `info` instead.',
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
      'Run the background jobs (event fan-out, webhooks, mails) inside `npm start`; `false` leaves them to `npm run worker`.',
  }),
  WORKER_POLL_MS: Type.Integer({
    default: 500,
    minimum: 10,
    maximum: 60_000,
    description:
      'How often idle workers look for work written by another instance (a write in the same process wakes them at once).',
  }),
  JOB_RETRY_DELAYS_SECONDS: Type.String({
    default: '5,60,600,3600,21600,86400',
    pattern: '^\\d+(\\.\\d+)?(,\\d+(\\.\\d+)?)*$',
    description: 'The waits before each retry of a webhook delivery or a mail: one attempt more than there are waits.',
  }),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: Type.Boolean({
    default: false,
    description:
      'Allow webhook URLs on loopback, private, link-local and unique-local addresses, and `http:` (tests, local receivers).',
  }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({
    default: 10_000,
    minimum: 100,
    maximum: 10_000,
    description: 'A delivery answered 2xx within this time is a success (at most 10 s).',
  }),
  METRICS_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description:
        'Serves `GET /metrics` on the API port to a caller sending it as `Authorization: Bearer …` (at least 16 characters). Unset, and without `METRICS_PORT`, `/metrics` is a 404.',
    }),
  ),
  METRICS_PORT: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 65535,
      description:
        'Serves `GET /metrics` without a token on a listener of its own, on `HOST` and this port (0: any free one): keep it off the public network. `npm run worker` serves its job series there too: a worker beside `npm start` on one host needs a port of its own.',
    }),
  ),
  TRASH_RETENTION_DAYS: Type.Integer({
    default: 30,
    minimum: 1,
    maximum: 3650,
    description: 'Days a trashed client or lead is kept before it is purged for good, hourly (1–3650).',
  }),
  WHATSAPP_VERIFY_TOKEN: Type.Optional(
    Type.String({
      minLength: 1,
      description: "WhatsApp: the token you type in Meta's webhook settings (see docs/integrations.md).",
    }),
  ),
  WHATSAPP_APP_SECRET: Type.Optional(
    Type.String({ minLength: 1, description: "WhatsApp: the Meta app's secret, which signs each webhook POST." }),
  ),
  WHATSAPP_ACCESS_TOKEN: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'WhatsApp: the Graph API bearer token used to send.',
    }),
  ),
  WHATSAPP_PHONE_NUMBER_ID: Type.Optional(
    Type.String({
      pattern: '^\\d{1,32}$',
      description: 'WhatsApp: the id of the sending number (not the number itself).',
    }),
  ),
  WHATSAPP_GRAPH_URL: Type.String({
    default: 'https://graph.facebook.com/v21.0',
    pattern: '^https?://',
    description: 'WhatsApp: the Graph API, with its version.',
  }),
  EVENT_RETENTION_DAYS: Type.Integer({
    default: 30,
    minimum: 1,
    description:
      'Events older than this, with nothing left to deliver or mail, are deleted hourly with their deliveries.',
  }),
})

export type Env = Static<typeof EnvSchema>
