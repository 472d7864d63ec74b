/**
 * Writes docs/configuration.md and .env.example from the environment schema (src/env.ts), so
 * that both say what the code reads. `--verify` only checks that both are current (CI runs it).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EnvSchema } from '../src/env.js'

/** The sections both files group the variables in, in order; every variable stands in one. */
const SECTIONS: Array<{ title: string; names: string[] }> = [
  { title: 'Server', names: ['NODE_ENV', 'HOST', 'PORT', 'PUBLIC_URL', 'LOG_LEVEL', 'LOG_FORMAT'] },
  { title: 'Metrics', names: ['METRICS_TOKEN', 'METRICS_PORT'] },
  {
    title: 'Database',
    names: [
      'DATABASE_URL',
      'DATA_DIR',
      'DB_POOL_SIZE',
      'DB_CONNECT_TIMEOUT_MS',
      'DB_STATEMENT_TIMEOUT_MS',
      'DB_WAIT_SECONDS',
      'MIGRATE_ON_START',
    ],
  },
  { title: 'Sign-in', names: ['JWT_SECRET', 'ACCESS_TOKEN_TTL_SECONDS', 'AUTH_CACHE_MS', 'ADMIN_PASSWORD'] },
  {
    title: 'Throttles',
    names: [
      'LOGIN_MAX_FAILURES_PER_USER',
      'LOGIN_MAX_FAILURES_PER_ADDRESS',
      'LOGIN_THROTTLE_WINDOW_SECONDS',
      'FORM_MAX_SUBMISSIONS_PER_FORM',
      'FORM_MAX_SUBMISSIONS_PER_ADDRESS',
      'FORM_THROTTLE_WINDOW_SECONDS',
    ],
  },
  {
    title: 'HTTP and uploads',
    names: [
      'TRUST_PROXY',
      'CORS_ORIGINS',
      'BODY_LIMIT_BYTES',
      'UPLOAD_IDLE_TIMEOUT_MS',
      'UPLOAD_MAX_INFLATED_BYTES',
      'DEFAULT_PHONE_REGION',
      'DEFAULT_CURRENCY',
    ],
  },
  {
    title: 'Mail, background jobs and retention',
    names: [
      'DEFAULT_LOCALE',
      'DEFAULT_TIME_ZONE',
      'DIGEST_HOUR',
      'SMTP_URL',
      'MAIL_FROM',
      'WORKERS',
      'WORKER_POLL_MS',
      'JOB_RETRY_DELAYS_SECONDS',
      'WEBHOOK_ALLOW_PRIVATE_NETWORKS',
      'WEBHOOK_TIMEOUT_MS',
      'TRASH_RETENTION_DAYS',
      'EVENT_RETENTION_DAYS',
    ],
  },
  {
    title: 'WhatsApp Business (Cloud API)',
    names: [
      'WHATSAPP_VERIFY_TOKEN',
      'WHATSAPP_APP_SECRET',
      'WHATSAPP_ACCESS_TOKEN',
      'WHATSAPP_PHONE_NUMBER_ID',
      'WHATSAPP_GRAPH_URL',
    ],
  },
]

interface Variable {
  name: string
  description: string
  default: unknown
  allowed: string
}

function variables(): Map<string, Variable> {
  const schema = EnvSchema as unknown as { properties: Record<string, Record<string, unknown>>; required?: string[] }
  const found = new Map<string, Variable>()
  for (const [name, property] of Object.entries(schema.properties)) {
    const description = property.description
    if (typeof description !== 'string') throw new Error(`${name} has no description in src/config.ts`)
    found.set(name, { name, description, default: property.default, allowed: allowedValues(property) })
  }
  const placed = SECTIONS.flatMap((section) => section.names)
  const unplaced = [...found.keys()].filter((name) => !placed.includes(name))
  const unknown = placed.filter((name) => !found.has(name))
  if (unplaced.length > 0 || unknown.length > 0) {
    throw new Error(
      `scripts/config-docs.ts SECTIONS: place ${unplaced.join(', ') || '-'}; remove ${unknown.join(', ') || '-'}`,
    )
  }
  return found
}

function allowedValues(property: Record<string, unknown>): string {
  if (Array.isArray(property.enum)) return property.enum.join(' \\| ')
  const parts: string[] = [String(property.type)]
  if (property.minimum !== undefined && property.maximum !== undefined) {
    parts.push(`${property.minimum}–${property.maximum}`)
  } else if (property.minimum !== undefined) {
    parts.push(`≥ ${property.minimum}`)
  } else if (property.maximum !== undefined) {
    parts.push(`≤ ${property.maximum}`)
  }
  if (property.pattern !== undefined) parts.push(`matching \`${property.pattern}\``)
  return parts.join(', ')
}

const text = (value: unknown) => (value === undefined ? '' : String(value))

function markdown(found: Map<string, Variable>): string {
  const out = [
    '# Configuration',
    '',
    'The API reads these variables from the environment, and from `.env` in the working folder when',
    'there is one (the environment wins; an empty value means unset). A bad value stops the start with',
    'one line that names the variable, and so does a taken `PORT`, a `DATA_DIR` that is a file, or a',
    'database that cannot be reached (named by host and port, never with its password). `.env.example`',
    'holds them all with their defaults: `cp .env.example .env` gives a file to edit.',
    '',
    'This page is generated from the schema in `src/env.ts` by `npm run config:docs`; CI checks that',
    'it is current.',
  ]
  for (const section of SECTIONS) {
    out.push(
      '',
      `## ${section.title}`,
      '',
      '| variable | default | values | what it does |',
      '| --- | --- | --- | --- |',
    )
    for (const name of section.names) {
      const variable = found.get(name) as Variable
      const fallback = variable.default === undefined ? '(unset)' : `\`${text(variable.default)}\``
      out.push(`| \`${name}\` | ${fallback} | ${variable.allowed} | ${variable.description.replaceAll('|', '\\|')} |`)
    }
  }
  return `${out.join('\n')}\n`
}

function envExample(found: Map<string, Variable>): string {
  const out = [
    '# Every variable the API reads, with its default. Copy to .env to change them.',
    '# An empty value means unset. Generated from src/env.ts (npm run config:docs); see docs/configuration.md.',
  ]
  for (const section of SECTIONS) {
    out.push('', `# --- ${section.title}`)
    for (const name of section.names) {
      const variable = found.get(name) as Variable
      out.push(`# ${variable.description}`, `${name}=${text(variable.default)}`)
    }
  }
  return `${out.join('\n')}\n`
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const found = variables()
const outputs = [
  { path: join(root, 'docs', 'configuration.md'), text: markdown(found) },
  { path: join(root, '.env.example'), text: envExample(found) },
]
if (process.argv.includes('--verify')) {
  const stale: string[] = []
  for (const output of outputs) {
    const current = await readFile(output.path, 'utf8').catch(() => '')
    if (current !== output.text) stale.push(output.path)
  }
  if (stale.length > 0) {
    console.error(`Out of date (run npm run config:docs): ${stale.join(', ')}`)
    process.exit(1)
  }
} else {
  for (const output of outputs) await writeFile(output.path, output.text)
}
