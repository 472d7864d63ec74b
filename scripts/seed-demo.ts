/**
 * Fills the configured database (DATABASE_URL, or the embedded one under DATA_DIR) with demo data:
 * sales users and a manager, clients and leads, each with its `create` audit row. It appends to
 * whatever is there, so it can be run again.
 * Usage: npm run seed:demo -- [--clients N] [--leads M] [--sales-users K]
 * Every demo user's password is `demo-password`. Run it while the server is stopped when using the
 * embedded database: its data directory has one owner.
 *
 * The rows are made by PostgreSQL itself (generate_series, a batch a statement), so a million
 * clients and five million leads take minutes, not hours.
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { type Kysely, type RawBuilder, sql } from 'kysely'
import { hashPassword } from '../src/auth/passwords.js'
import { loadConfig } from '../src/config.js'
import type { Database } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import type { DB } from '../src/db/types.js'
import { openConfiguredDatabase } from '../src/runtime.js'

export const DEMO_PASSWORD = 'demo-password'
export const DEMO_MANAGER = 'demo.manager'
export const demoSalesUsername = (index: number) => `demo.sales${index}`

export interface SeedOptions {
  clients: number
  leads: number
  salesUsers: number
  /** Rows a statement; the defaults suit a real server. */
  clientBatchSize?: number
  leadBatchSize?: number
}

export interface SeedResult {
  usersCreated: number
  clientsAdded: number
  leadsAdded: number
  seconds: number
}

type Log = (message: string) => void

const DEFAULT_CLIENT_BATCH = 100_000
const DEFAULT_LEAD_BATCH = 250_000

// --- What the rows are made of -------------------------------------------------------------------

/**
 * Mobile number ranges in which every subscriber number is valid for libphonenumber-js (checked
 * against its full metadata). A client's country is drawn by weight; its number within the country
 * comes from its sequence number through a bijection, so two clients never get the same number.
 */
const PHONE_PLANS = [
  {
    weight: 85,
    prefixes: ['58412', '58414', '58416', '58424', '58426'],
    digits: 7,
    cities: [
      'Caracas',
      'Maracaibo',
      'Valencia',
      'Barquisimeto',
      'Maracay',
      'Puerto La Cruz',
      'Mérida',
      'San Cristóbal',
      'Barcelona',
      'Ciudad Guayana',
      'Maturín',
      'Cumaná',
      'Los Teques',
      'Punto Fijo',
      'Porlamar',
      'Barinas',
    ],
  },
  {
    weight: 5,
    prefixes: ['57300', '57301', '57304', '57310', '57311', '57312', '57313', '57314', '57315', '57316', '57320'],
    digits: 7,
    cities: ['Bogotá', 'Medellín', 'Cali', 'Barranquilla', 'Cúcuta', 'Bucaramanga'],
  },
  {
    weight: 3,
    prefixes: ['5255', '5233', '5281'],
    digits: 8,
    cities: ['Ciudad de México', 'Guadalajara', 'Monterrey'],
  },
  { weight: 2, prefixes: ['519'], digits: 8, cities: ['Lima', 'Arequipa', 'Trujillo'] },
  { weight: 2, prefixes: ['549112', '549113', '549114', '549115', '549116'], digits: 7, cities: ['Buenos Aires'] },
  { weight: 1.5, prefixes: ['5694', '5695', '5698'], digits: 7, cities: ['Santiago', 'Valparaíso'] },
  { weight: 1.5, prefixes: ['59398', '59399'], digits: 7, cities: ['Quito', 'Guayaquil'] },
] as const

// A prime larger than any plan's count of numbers: n -> n * P mod size is then a bijection on 0..size-1.
// The smallest plan has 2e7 numbers, so the first 20 million sequence numbers never share a number.
const PHONE_MULTIPLIER = 2_147_483_647

const FIRST_NAMES = [
  'José',
  'María',
  'Luis',
  'Carmen',
  'Juan Carlos',
  'María José',
  'Ana',
  'Carlos',
  'Andrés',
  'Gabriela',
  'José Luis',
  'Rosa',
  'Jesús',
  'Luisa',
  'Miguel Ángel',
  'Daniela',
  'Pedro',
  'Valentina',
  'Alejandro',
  'Mariana',
  'Francisco',
  'Andreína',
  'Rafael',
  'Verónica',
  'Héctor',
  'Génesis',
  'Ramón',
  'Inés',
  'Óscar',
  'Sofía',
  'Raúl',
  'Lucía',
  'Simón',
  'Mónica',
  'Jesús Alberto',
  'Beatriz',
  'Víctor',
  'Ángela',
  'Germán',
  'Dulce María',
  'Fernando',
  'Patricia',
  'Ricardo',
  'Elena',
  'Martín',
  'Noemí',
  'Julián',
  'Belén',
  'Tomás',
  'Zoraida',
  'Nicolás',
  'Milagros',
  'Joaquín',
  'Yolanda',
  'Adrián',
  'Érika',
  'Rubén',
  'Isabel',
  'Efraín',
  'Leonor',
]

const SURNAMES = [
  'Pérez',
  'Gómez',
  'Núñez',
  'Ñáñez',
  'González',
  'Rodríguez',
  'Hernández',
  'García',
  'Martínez',
  'López',
  'Díaz',
  'Sánchez',
  'Ramírez',
  'Torres',
  'Rojas',
  'Fernández',
  'Álvarez',
  'Romero',
  'Suárez',
  'Jiménez',
  'Gutiérrez',
  'Méndez',
  'Castillo',
  'Mendoza',
  'Vásquez',
  'Chacón',
  'Briceño',
  'Peña',
  'Muñoz',
  'Ortiz',
  'Salazar',
  'Guzmán',
  'Blanco',
  'Medina',
  'Rincón',
  'Parra',
  'Acosta',
  'Colmenares',
  'Bermúdez',
  'Márquez',
  'Zambrano',
  'Quintero',
  'Montaño',
  'Uzcátegui',
  'Marín',
  'Domínguez',
  'Castañeda',
  'Báez',
  'Cordero',
  'Lugo',
  'León',
  'Istúriz',
  'Ibáñez',
  'Carreño',
  'Villalobos',
  'Sosa',
  'Escalona',
  'Toro',
]

const COMPANY_KINDS = [
  'Inversiones',
  'Inversiones',
  'Distribuidora',
  'Distribuidora',
  'Comercializadora',
  'Servicios',
  'Grupo',
  'Constructora',
  'Corporación',
  'Importadora',
  'Suministros',
  'Tecnología',
  'Agropecuaria',
  'Transporte',
  'Ferretería',
  'Panadería',
]
const COMPANY_NAMES = [
  'El Sol',
  'Los Andes',
  'del Caribe',
  'Oriente',
  'La Esperanza',
  'El Ávila',
  'San José',
  'Santa Rosa',
  'Guayana',
  'Margarita',
  'Tres Hermanos',
  'La Económica',
  'Zuliana',
  'Andina',
  'Llanera',
  'Continental',
  'Bolívar',
  'Horizonte',
  'Araguaney',
  'La Campiña',
]
const COMPANY_FORMS = ['C.A.', 'C.A.', 'C.A.', 'S.A.', 'S.A.', 'S.R.L.']

const EMAIL_DOMAINS = ['gmail.com', 'gmail.com', 'gmail.com', 'hotmail.com', 'yahoo.com', 'outlook.com', 'icloud.com']

const STREETS = [
  'Av. Francisco de Miranda',
  'Av. Bolívar',
  'Av. Libertador',
  'Calle Páez',
  'Av. Universidad',
  'Calle Sucre',
  'Av. Las Américas',
  'Calle Los Mangos',
  'Av. Principal',
  'Calle Real',
  'Av. Andrés Bello',
  'Calle Comercio',
  'Av. 5 de Julio',
  'Calle Junín',
  'Av. Urdaneta',
  'Carrera 19',
  'Calle 24',
]
const BUILDINGS = [
  'Edif. Los Jabillos',
  'Torre Británica',
  'Res. El Parque',
  'Edif. Mónaco',
  'C.C. Galerías',
  'Torre Ávila',
]

const CHANNELS = ['web', 'whatsapp', 'instagram', 'manual'] as const
const CHANNEL_WEIGHTS = [23, 45, 22, 10]
const STATUSES = ['new', 'contacted', 'quoted', 'closed', 'discarded'] as const
// A lead of the last month is likely still open; an older one has mostly been closed or discarded.
const RECENT_STATUS_WEIGHTS = [40, 30, 20, 5, 5]
const OLDER_STATUS_WEIGHTS = [6, 17, 20, 34, 23]

const SALES_NOTES: Record<(typeof STATUSES)[number], string[]> = {
  new: ['Preguntó por disponibilidad', 'Escribió pidiendo precios', 'Quiere saber si hacen envíos'],
  contacted: [
    'Se le envió el catálogo por WhatsApp',
    'Llamar el lunes en la mañana',
    'Pidió precios al mayor',
    'No contesta, intentar de nuevo',
    'Interesado, pide más fotos del producto',
  ],
  quoted: [
    'Cotización enviada, espera aprobación',
    'Solicita descuento por pago en divisas',
    'Cotizó 20 unidades, decide esta semana',
    'Pidió cotización con envío a Valencia',
  ],
  closed: [
    'Pagó por transferencia, entrega el viernes',
    'Venta cerrada, retira en tienda',
    'Pago móvil confirmado',
    'Cliente satisfecho, pidió factura',
  ],
  discarded: [
    'No le interesa por ahora',
    'Le pareció muy caro',
    'Compró con la competencia',
    'Número equivocado',
    'Sin respuesta después de tres intentos',
  ],
}
const ADMIN_NOTES = [
  'Cliente referido por otro cliente',
  'Verificar el RIF antes de facturar',
  'Prioridad alta: cliente mayorista',
  'Revisar si es duplicado de otro lead',
  'Descuento autorizado hasta 10%',
  'Tiene pagos atrasados de compras anteriores',
]

const SALES_FULL_NAMES = [
  'Ana Rodríguez',
  'Carlos Mendoza',
  'Gabriela Núñez',
  'Luis Fernández',
  'Daniela Peña',
  'Jesús Márquez',
  'Valentina Suárez',
  'Andrés Chacón',
]

/** Cumulative bounds for width_bucket(random() * total, bounds): bucket i has weights[i - 1]. */
function bounds(weights: readonly number[]): number[] {
  const result: number[] = []
  let sum = 0
  for (const weight of weights) {
    result.push(sum)
    sum += weight
  }
  return result
}

const total = (weights: readonly number[]) => weights.reduce((sum, weight) => sum + weight, 0)

/** Lists of lists as one flat array plus where each list starts (1-based) and how long it is. */
function flatten(lists: readonly (readonly string[])[]): { items: string[]; starts: number[]; counts: number[] } {
  const items: string[] = []
  const starts: number[] = []
  const counts: number[] = []
  for (const list of lists) {
    starts.push(items.length + 1)
    counts.push(list.length)
    items.push(...list)
  }
  return { items, starts, counts }
}

// --- Seeding ---------------------------------------------------------------------------------------

/** Adds demo users, clients and leads; one statement a batch, run one after the other on one connection. */
export async function seedDemo(db: Database, options: SeedOptions, log: Log = console.log): Promise<SeedResult> {
  const started = performance.now()
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(1)
  return db.connection().execute(async (conn) => {
    const users = await seedUsers(conn, options.salesUsers)
    log(`users: ${users.created} created, sales ${users.salesIds.length}, manager ${users.managerId ?? 'none'}`)
    const creatorIds = [...users.salesIds, ...(users.managerId === undefined ? [] : [users.managerId])]

    const clientsAdded = await seedClients(conn, options.clients, options.clientBatchSize ?? DEFAULT_CLIENT_BATCH, {
      creatorIds,
      progress: (done) => log(`clients: ${format(done)} / ${format(options.clients)} (${elapsed()} s)`),
    })
    const leadsAdded = await seedLeads(conn, options.leads, options.leadBatchSize ?? DEFAULT_LEAD_BATCH, {
      salesIds: users.salesIds,
      creatorIds,
      progress: (done) => log(`leads: ${format(done)} / ${format(options.leads)} (${elapsed()} s)`),
    })
    if (clientsAdded + leadsAdded > 0) {
      await sql`analyze clients`.execute(conn)
      await sql`analyze leads`.execute(conn)
      await sql`analyze audit_logs`.execute(conn)
    }
    const seconds = (performance.now() - started) / 1000
    log(`done: ${users.created} users, ${format(clientsAdded)} clients, ${format(leadsAdded)} leads in ${elapsed()} s`)
    return { usersCreated: users.created, clientsAdded, leadsAdded, seconds }
  })
}

async function seedUsers(
  conn: Kysely<DB>,
  salesUsers: number,
): Promise<{ created: number; salesIds: number[]; managerId: number | undefined }> {
  const wanted = [
    ...Array.from({ length: salesUsers }, (_, index) => ({
      username: demoSalesUsername(index + 1),
      fullName: SALES_FULL_NAMES[index % SALES_FULL_NAMES.length] as string,
      role: 'sales' as const,
    })),
    { username: DEMO_MANAGER, fullName: 'María Elena Castillo', role: 'management' as const },
  ]
  const usernames = wanted.map((user) => user.username)
  const existing = new Set(
    (await conn.selectFrom('users').select('username').where('username', 'in', usernames).execute()).map(
      (user) => user.username,
    ),
  )
  const missing = wanted.filter((user) => !existing.has(user.username))
  let created = 0
  if (missing.length > 0) {
    // One hash for all of them: argon2 is slow on purpose.
    const passwordHash = await hashPassword(DEMO_PASSWORD)
    const values = sql.join(
      missing.map(
        (user) =>
          sql`(${user.username}::text, ${user.fullName}::text, ${user.role}::user_role, ${`${user.username}@demo.example`}::text)`,
      ),
    )
    const result = await sql<{ id: number }>`
      with wanted (username, full_name, role, email) as (values ${values}),
      inserted as (
        insert into users (username, full_name, role, email, password_hash)
        select username, full_name, role, email, ${passwordHash}::text from wanted
        on conflict do nothing
        returning *
      ),
      audit as (
        insert into audit_logs (table_name, record_id, action, old_values, new_values, user_id, username, request_id)
        select 'users', id, 'create', null, to_jsonb(inserted) - 'password_hash' - 'token_version', null, 'seed', null
        from inserted
      )
      select id from inserted`.execute(conn)
    created = result.rows.length
  }
  const rows = await conn
    .selectFrom('users')
    .select(['id', 'username', 'role'])
    .where('username', 'in', usernames)
    .where('is_active', '=', true)
    .orderBy('id')
    .execute()
  return {
    created,
    // Only those still in their demo role: a lead is assigned to a sales user.
    salesIds: rows.filter((user) => user.role === 'sales' && user.username !== DEMO_MANAGER).map((user) => user.id),
    managerId: rows.find((user) => user.username === DEMO_MANAGER)?.id,
  }
}

async function seedClients(
  conn: Kysely<DB>,
  count: number,
  batchSize: number,
  context: { creatorIds: number[]; progress: (done: number) => void },
): Promise<number> {
  if (count <= 0) return 0
  // Sequence numbers past every id so far: each one gives a number no earlier client got.
  const top = await sql<{ max: number | null }>`select max(id) as max from clients`.execute(conn)
  let next = (top.rows[0]?.max ?? 0) + 1
  const window = await timeWindow(conn, sql`now() - interval '730 days'`)
  let added = 0
  let emptyBatches = 0
  while (added < count) {
    const size = Math.min(batchSize, count - added)
    const inserted = await insertClients(conn, {
      from: next,
      to: next + size - 1,
      time: timeSlice(window, added, size, count),
      creatorIds: context.creatorIds,
    })
    next += size
    added += inserted
    // Numbers already taken (by clients made through the API) are skipped, and made up for here.
    emptyBatches = inserted === 0 ? emptyBatches + 1 : 0
    if (emptyBatches >= 3) throw new Error('Every generated phone number is already taken: giving up')
    context.progress(added)
  }
  return added
}

const plans = {
  bounds: bounds(PHONE_PLANS.map((plan) => plan.weight)),
  total: total(PHONE_PLANS.map((plan) => plan.weight)),
  prefixes: flatten(PHONE_PLANS.map((plan) => plan.prefixes)),
  digits: PHONE_PLANS.map((plan) => plan.digits),
  space: PHONE_PLANS.map((plan) => 10 ** plan.digits),
  cities: flatten(PHONE_PLANS.map((plan) => plan.cities)),
}

interface TimeWindow {
  start: Date
  end: Date
}

/** A window of time ending now, by the database's clock. */
async function timeWindow(conn: Kysely<DB>, start: RawBuilder<unknown>): Promise<TimeWindow> {
  const result = await sql<TimeWindow>`select ${start} as start, now() as end`.execute(conn)
  return result.rows[0] as TimeWindow
}

/**
 * The part of the window a batch's rows are dated in: batch after batch moves forward in time, so
 * each one adds to the end of the date indexes instead of to pages all over them (which, on a big
 * table, costs ten times the time and write-ahead log).
 */
function timeSlice(window: TimeWindow, done: number, size: number, count: number): TimeWindow {
  const span = window.end.getTime() - window.start.getTime()
  const at = (rows: number) => new Date(window.start.getTime() + (span * rows) / count)
  return { start: at(done), end: at(done + size) }
}

async function insertClients(
  conn: Kysely<DB>,
  batch: { from: number; to: number; time: TimeWindow; creatorIds: number[] },
): Promise<number> {
  const { from, to, time, creatorIds } = batch
  const pick = (list: string[], random: string) =>
    sql`(${list}::text[])[1 + floor(${sql.ref(random)} * ${list.length})::int]`
  const slug = (text: RawBuilder<unknown>) => sql`regexp_replace(immutable_unaccent(lower(${text})), '[^a-z]', '', 'g')`
  const result = await sql<{ inserted: number }>`
    with drawn as (
      -- One random draw a column, made here so that the columns below agree with each other.
      select g.n,
        width_bucket(random() * ${plans.total}, ${plans.bounds}::float8[]) as plan,
        random() as r_first, random() as r_surname1, random() as r_surname2, random() as r_two_surnames,
        random() as r_type, random() as r_kind, random() as r_company, random() as r_company_form,
        random() as r_company_own, random() as r_email, random() as r_email_form, random() as r_domain,
        random() as r_address, random() as r_street, random() as r_building, random() as r_number,
        random() as r_city, random() as r_created, random() as r_updated, random() as r_updated_at,
        random() as r_creator, random() as r_creator_id
      from generate_series(${from}::int8, ${to}::int8) as g(n)
    ),
    numbered as (
      select d.*,
        (d.n * ${PHONE_MULTIPLIER}::int8)
          % ((${plans.prefixes.counts}::int8[])[d.plan] * (${plans.space}::int8[])[d.plan]) as k,
        ${pick(FIRST_NAMES, 'r_first')} as first_name,
        ${pick(SURNAMES, 'r_surname1')} as surname1,
        ${pick(SURNAMES, 'r_surname2')} as surname2,
        ${time.start}::timestamptz + d.r_created * (${time.end}::timestamptz - ${time.start}::timestamptz) as created_at
      from drawn d
    ),
    shaped as (
      select u.*,
        '+' || (${plans.prefixes.items}::text[])[(${plans.prefixes.starts}::int[])[u.plan]
          + (u.k / (${plans.space}::int8[])[u.plan])::int]
          || lpad((u.k % (${plans.space}::int8[])[u.plan])::text, (${plans.digits}::int[])[u.plan], '0') as phone,
        u.first_name || ' ' || u.surname1 || case when u.r_two_surnames < 0.6 then ' ' || u.surname2 else '' end
          as contact_name,
        case when u.r_type < 0.2 then 'juridical' else 'natural' end::client_type as client_type,
        (${plans.cities.items}::text[])[(${plans.cities.starts}::int[])[u.plan]
          + floor(u.r_city * (${plans.cities.counts}::int[])[u.plan])::int] as city
      from numbered u
    ),
    inserted as (
      insert into clients (client_type, contact_name, company_name, phone, email, address, created_by, created_at, updated_at)
      select s.client_type, s.contact_name,
        case when s.client_type = 'juridical' then
          ${pick(COMPANY_KINDS, 'r_kind')} || ' '
            || case when s.r_company_own < 0.4 then s.surname1 else ${pick(COMPANY_NAMES, 'r_company')} end
            || ' ' || ${pick(COMPANY_FORMS, 'r_company_form')}
        end,
        s.phone,
        case when s.r_email < 0.6 then
          ${slug(sql`split_part(s.first_name, ' ', 1)`)}
            || case when s.r_email_form < 0.5 then '.' else '_' end
            || ${slug(sql`s.surname1`)} || s.n || '@' || ${pick(EMAIL_DOMAINS, 'r_domain')}
        end,
        case when s.r_address < 0.45 then
          ${pick(STREETS, 'r_street')} || ', '
            || case when s.r_building < 0.5 then 'casa nro. ' || (1 + floor(s.r_number * 250))::int
              else ${pick(BUILDINGS, 'r_building')} || ', piso ' || (1 + floor(s.r_number * 15))::int end
            || ', ' || s.city
        end,
        case when s.r_creator >= 0.3 then (${creatorIds}::int[])[1 + floor(s.r_creator_id * ${creatorIds.length})::int] end,
        s.created_at,
        case when s.r_updated < 0.6 then s.created_at
          else s.created_at + s.r_updated_at * least(interval '90 days', now() - s.created_at) end
      from shaped s
      order by s.created_at
      -- Only a safety net: the numbers are made unique above.
      on conflict do nothing
      returning *
    ),
    audit as (
      insert into audit_logs (table_name, record_id, action, old_values, new_values, user_id, username, request_id)
      select 'clients', id, 'create', null, to_jsonb(inserted) - 'search_text', null, 'seed', null from inserted
    )
    select count(*)::int as inserted from inserted`.execute(conn)
  return result.rows[0]?.inserted ?? 0
}

async function seedLeads(
  conn: Kysely<DB>,
  count: number,
  batchSize: number,
  context: { salesIds: number[]; creatorIds: number[]; progress: (done: number) => void },
): Promise<number> {
  if (count <= 0) return 0
  await sql`drop table if exists pg_temp.seed_demo_clients, pg_temp.seed_demo_days`.execute(conn)
  try {
    // The clients numbered in the order they were created, and for each day how many existed by its
    // end: a lead of that day picks a number in 1..that many, so its client is one present, created
    // before it, whatever the gaps in the ids.
    await sql`
      create temp table seed_demo_clients as
      select (row_number() over (order by created_at, id))::int as rn, id, created_at from clients`.execute(conn)
    await sql`alter table seed_demo_clients add primary key (rn)`.execute(conn)
    await sql`
      create temp table seed_demo_days as
      select g.day::date as day, max(p.upto) over (order by g.day) as upto
      from generate_series((select min(created_at)::date from seed_demo_clients), current_date, interval '1 day') as g(day)
      left join (select created_at::date as day, max(rn) as upto from seed_demo_clients group by 1) p
        on p.day = g.day::date`.execute(conn)
    await sql`alter table seed_demo_days add primary key (day)`.execute(conn)
    await sql`analyze seed_demo_clients`.execute(conn)
    await sql`analyze seed_demo_days`.execute(conn)
    const first = await sql<{ first: Date | null }>`select min(created_at) as first from seed_demo_clients`.execute(
      conn,
    )
    const firstClient = first.rows[0]?.first
    if (!firstClient) throw new Error('There are no clients to give leads to: seed some clients first')
    // The last 18 months, or less when the first client is younger than that.
    const window = await timeWindow(conn, sql`greatest(now() - interval '548 days', ${firstClient}::timestamptz)`)
    let added = 0
    while (added < count) {
      const size = Math.min(batchSize, count - added)
      added += await insertLeads(conn, { size, time: timeSlice(window, added, size, count), ...context })
      context.progress(added)
    }
    return added
  } finally {
    await sql`drop table if exists pg_temp.seed_demo_clients, pg_temp.seed_demo_days`.execute(conn)
  }
}

const salesNotes = flatten(STATUSES.map((status) => SALES_NOTES[status]))

async function insertLeads(
  conn: Kysely<DB>,
  batch: { size: number; time: TimeWindow; salesIds: number[]; creatorIds: number[] },
): Promise<number> {
  const { size, time, salesIds, creatorIds } = batch
  const result = await sql<{ inserted: number }>`
    with drawn as (
      select ${time.start}::timestamptz + random() * (${time.end}::timestamptz - ${time.start}::timestamptz) as at,
        random() as r_client,
        width_bucket(random() * ${total(CHANNEL_WEIGHTS)}, ${bounds(CHANNEL_WEIGHTS)}::float8[]) as channel_index,
        random() as r_status, random() as r_changed, random() as r_updated,
        random() as r_updated_at, random() as r_assigned, random() as r_assignee, random() as r_sales_note,
        random() as r_sales_note_text, random() as r_admin_note, random() as r_admin_note_text,
        random() as r_creator, random() as r_creator_id
      from generate_series(1, ${size}::int) as g(i)
    ),
    dated as (
      -- A client that existed on the lead's day; on that very day the lead waits for its client.
      select d.*, c.id as client_id, greatest(d.at, c.created_at) as created_at
      from drawn d
      join seed_demo_days day on day.day = d.at::date
      join seed_demo_clients c on c.rn = 1 + floor(d.r_client * day.upto)::int
    ),
    classified as (
      select c.*,
        case when c.created_at > now() - interval '30 days'
          then width_bucket(c.r_status * ${total(RECENT_STATUS_WEIGHTS)}, ${bounds(RECENT_STATUS_WEIGHTS)}::float8[])
          else width_bucket(c.r_status * ${total(OLDER_STATUS_WEIGHTS)}, ${bounds(OLDER_STATUS_WEIGHTS)}::float8[])
        end as status_index
      from dated c
    ),
    changed as (
      -- A lead moves on within days, seldom after more than a month.
      select s.*,
        case when s.status_index = 1 then s.created_at
          else s.created_at + s.r_changed * s.r_changed * least(interval '45 days', now() - s.created_at) end
          as status_changed_at
      from classified s
    ),
    inserted as (
      insert into leads (client_id, channel, status, admin_notes, sales_notes, assigned_to, created_by, created_at,
        updated_at, status_changed_at)
      select l.client_id,
        (${CHANNELS}::lead_channel[])[l.channel_index],
        (${STATUSES}::lead_status[])[l.status_index],
        case when l.r_admin_note < 0.12 then
          (${ADMIN_NOTES}::text[])[1 + floor(l.r_admin_note_text * ${ADMIN_NOTES.length})::int]
        end,
        case when l.r_sales_note < case when l.status_index = 1 then 0.2 else 0.6 end then
          (${salesNotes.items}::text[])[(${salesNotes.starts}::int[])[l.status_index]
            + floor(l.r_sales_note_text * (${salesNotes.counts}::int[])[l.status_index])::int]
        end,
        case when l.r_assigned < 0.8 then (${salesIds}::int[])[1 + floor(l.r_assignee * ${salesIds.length})::int] end,
        case when l.r_creator >= 0.3 then
          (${creatorIds}::int[])[1 + floor(l.r_creator_id * ${creatorIds.length})::int]
        end,
        l.created_at,
        case when l.r_updated < 0.5 then l.status_changed_at
          else l.status_changed_at + l.r_updated_at * least(interval '20 days', now() - l.status_changed_at) end,
        l.status_changed_at
      from changed l
      order by l.created_at
      returning *
    ),
    audit as (
      insert into audit_logs (table_name, record_id, action, old_values, new_values, user_id, username, request_id)
      select 'leads', id, 'create', null, to_jsonb(inserted) - 'notes_search', null, 'seed', null from inserted
    )
    select count(*)::int as inserted from inserted`.execute(conn)
  return result.rows[0]?.inserted ?? 0
}

function format(value: number): string {
  return value.toLocaleString('en-US')
}

// --- Command line ----------------------------------------------------------------------------------

function parseCount(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const cleaned = text.replaceAll('_', '')
  if (!/^\d+$/.test(cleaned)) throw new Error(`--${name} must be a whole number, not ${JSON.stringify(text)}`)
  return Number(cleaned)
}

async function main(): Promise<void> {
  let options: SeedOptions
  try {
    const { values } = parseArgs({
      options: {
        clients: { type: 'string' },
        leads: { type: 'string' },
        'sales-users': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
    if (values.help) {
      console.log('usage: npm run seed:demo -- [--clients N=500] [--leads M=2000] [--sales-users K=5]')
      return
    }
    options = {
      clients: parseCount('clients', values.clients, 500),
      leads: parseCount('leads', values.leads, 2000),
      salesUsers: parseCount('sales-users', values['sales-users'], 5),
    }
  } catch (error) {
    console.error((error as Error).message)
    console.error('usage: npm run seed:demo -- [--clients N=500] [--leads M=2000] [--sales-users K=5]')
    process.exitCode = 2
    return
  }
  const config = loadConfig()
  // A batch statement runs for seconds, longer than the API's statement timeout allows.
  const database = await openConfiguredDatabase({
    ...config,
    dbStatementTimeoutMs: Math.max(config.dbStatementTimeoutMs, 30 * 60_000),
  })
  try {
    await migrate(database.url)
    const result = await seedDemo(database.handle.db, options)
    console.log(
      `Demo users: ${DEMO_MANAGER} (management) and demo.sales1..${options.salesUsers} (sales), ` +
        `password ${DEMO_PASSWORD}; ${result.usersCreated} created now`,
    )
  } finally {
    await database.close()
  }
}

const entry = process.argv[1]
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  await main()
}
