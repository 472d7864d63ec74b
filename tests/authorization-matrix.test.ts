import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { countRows, problemOf, startTestContext, type TestContext, type TestUser } from './helpers/context.js'
import { createClient, createLead, uniquePhone } from './helpers/fixtures.js'
import { type FakeGraphApi, startFakeGraphApi } from './helpers/graph-api.js'

const PRINCIPALS = ['anonymous', 'salesOwner', 'salesOther', 'management', 'admin'] as const
type Principal = (typeof PRINCIPALS)[number]
type Expected = Record<Principal, number>

/**
 * The Roles table of API.md, one row per operationId, written out independently of the code under
 * test. `salesOwner` is a sales user to whom the lead involved is assigned, `salesOther` one to whom
 * it is not. A route added to the API without a row here makes the matrix test fail.
 */
const EXPECTED: Record<string, Expected> = {
  // Public: no token needed, and a token does not hurt.
  getHealth: { anonymous: 200, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getApiIndex: { anonymous: 200, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getReadiness: { anonymous: 200, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  login: { anonymous: 200, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  // Your own account: anyone signed in.
  getCurrentUser: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  updateCurrentUser: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  changeOwnPassword: { anonymous: 401, salesOwner: 204, salesOther: 204, management: 204, admin: 204 },
  getOwnNotificationSettings: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  updateOwnNotificationSettings: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  // Your own API keys: anyone signed in; everyone's keys (all=true, revoking another's): admin only.
  createApiKey: { anonymous: 401, salesOwner: 201, salesOther: 201, management: 201, admin: 201 },
  listApiKeys: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  deleteApiKey: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 204 },
  // /users (all verbs) and /audit-logs: admin only.
  listUsers: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  createUser: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 201 },
  getUser: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  updateUser: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  deleteUser: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 204 },
  listAuditLogs: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  // Clients: everyone reads, creates and updates; sales may not delete.
  listClients: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  createClient: { anonymous: 401, salesOwner: 201, salesOther: 201, management: 201, admin: 201 },
  searchClients: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getClientByPhone: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getClient: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  updateClient: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  deleteClient: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 204, admin: 204 },
  getClientHistory: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  // Leads: lists and stats are scoped for sales, not refused; another's lead is 404 to sales.
  listLeads: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  createLead: { anonymous: 401, salesOwner: 201, salesOther: 201, management: 201, admin: 201 },
  getLeadStats: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getLead: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  updateLead: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  changeLeadStatus: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  assignLead: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  deleteLead: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 204, admin: 204 },
  getLeadHistory: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  // Lead activities: as the lead; deleting is for the author (here the owner), admin and management.
  listLeadActivities: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  addLeadActivity: { anonymous: 401, salesOwner: 201, salesOther: 404, management: 201, admin: 201 },
  getLeadActivity: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  deleteLeadActivity: { anonymous: 401, salesOwner: 204, salesOther: 404, management: 204, admin: 204 },
  // Tasks: every role; salesOwner's task is on their lead and assigned to them, salesOther's is 404.
  listTasks: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getAgenda: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  createTask: { anonymous: 401, salesOwner: 201, salesOther: 201, management: 201, admin: 201 },
  getTask: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  updateTask: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  deleteTask: { anonymous: 401, salesOwner: 204, salesOther: 404, management: 204, admin: 204 },
  completeTask: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  reopenTask: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 200, admin: 200 },
  // Webhooks, web forms and assignment rules: admin only.
  getAssignmentRules: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  replaceAssignmentRules: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  // Pipeline settings: everyone reads them; only admins change them.
  getPipelineSettings: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  replacePipelineSettings: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  createWebForm: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 201 },
  listWebForms: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  getWebForm: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  updateWebForm: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  rotateWebFormKey: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  deleteWebForm: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 204 },
  // A web form's public post: no token needed, and a token does not hurt.
  submitWebForm: { anonymous: 201, salesOwner: 201, salesOther: 201, management: 201, admin: 201 },
  createWebhook: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 201 },
  listWebhooks: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  getWebhook: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  updateWebhook: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  deleteWebhook: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 204 },
  rotateWebhookSecret: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  listWebhookDeliveries: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  retryWebhookDelivery: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  pingWebhook: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 200 },
  // Exports are scoped for sales like the lists; imports are for admin and management.
  exportClients: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  exportLeads: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  importClients: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  importLeads: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  // Search: everyone, sales scoped to their own leads.
  search: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  // Saved views: everyone has their own; salesOwner owns the view involved. An unshared view is
  // 404 to anyone else (admins included); a shared one is changed by its owner and admins only.
  createView: { anonymous: 401, salesOwner: 201, salesOther: 201, management: 201, admin: 201 },
  listViews: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  getView: { anonymous: 401, salesOwner: 200, salesOther: 404, management: 404, admin: 404 },
  updateView: { anonymous: 401, salesOwner: 200, salesOther: 403, management: 403, admin: 200 },
  deleteView: { anonymous: 401, salesOwner: 204, salesOther: 403, management: 403, admin: 204 },
  // Merge and the trash: admin and management; purging for good is the admin's alone.
  mergeClients: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  listTrash: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  restoreClient: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  restoreLead: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 200, admin: 200 },
  purgeTrashed: { anonymous: 401, salesOwner: 403, salesOther: 403, management: 403, admin: 204 },
  // Bulk status changes: every role may send one; each item answers as its single route would.
  bulkLeads: { anonymous: 401, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  // WhatsApp: Meta's webhook needs no token (its verify token or signature instead); sending is a lead activity.
  verifyWhatsAppWebhook: { anonymous: 200, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  receiveWhatsAppNotification: { anonymous: 200, salesOwner: 200, salesOther: 200, management: 200, admin: 200 },
  sendLeadWhatsApp: { anonymous: 401, salesOwner: 201, salesOther: 404, management: 201, admin: 201 },
}

interface Call {
  /** Values for the path's {placeholders}. */
  params?: Record<string, string | number>
  query?: Record<string, string>
  body?: unknown
  /** A body sent as it is, with this content type, rather than as JSON. */
  contentType?: string
  /** Call as this token instead of the principal's own (a fresh user of the principal's role). */
  token?: string
  /** Headers besides the content type and the token (a webhook's signature). */
  headers?: Record<string, string>
}

interface Fixtures {
  users: Record<Exclude<Principal, 'anonymous' | 'admin'>, TestUser>
  loginUser: TestUser
  clientId: number
  clientPhone: string
  leadId: number
  webhookId: number
}

const WHATSAPP = { verifyToken: 'matrix-verify-token', appSecret: 'matrix-app-secret' }
/** An empty notification of Meta's shape, signed with the app secret. */
const WHATSAPP_NOTIFICATION = JSON.stringify({ object: 'whatsapp_business_account', entry: [] })

// A public address written as an IP, so that saving it needs no DNS.
const WEBHOOK = { url: 'https://93.184.215.14/crm-events', events: ['client.merged'] }

const freshName = (prefix: string) => `${prefix}.${randomBytes(4).toString('hex')}`
const roleOf = (who: Exclude<Principal, 'anonymous'>): TestUser['role'] =>
  who === 'salesOwner' || who === 'salesOther' ? 'sales' : who

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function handMadeToken(header: object, claims: object, secret?: string): string {
  const unsigned = `${base64url(header)}.${base64url(claims)}`
  const signature = secret ? createHmac('sha256', secret).update(unsigned).digest('base64url') : ''
  return `${unsigned}.${signature}`
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
}

describe('authorization matrix', () => {
  let ctx: TestContext
  let fixtures: Fixtures
  let tokens: Record<Principal, string | undefined>
  let graph: FakeGraphApi

  /** A new client without leads. */
  const newClient = async () => (await createClient(ctx, { contact_name: 'Matrix Fixture' })).id
  /** A new lead on the fixture client, assigned to the owning sales user. */
  const newLead = async () =>
    (await createLead(ctx, { client_id: fixtures.clientId, assigned_to: fixtures.users.salesOwner.id })).id

  /** Moves a client or lead to the trash, and gives its id. */
  const trashed = async (type: 'clients' | 'leads', id: number) => {
    const response = await ctx.as(ctx.adminToken, 'DELETE', `/${type}/${id}`)
    assert.equal(response.statusCode, 204, response.body)
    return id
  }

  /** A task of the owning sales user on a new lead of theirs; `done`: completed already. */
  const newTask = async (done = false) => {
    const response = await ctx.as(fixtures.users.salesOwner.token, 'POST', '/tasks', {
      title: 'Llamar',
      due_at: '2026-12-09T14:00:00Z',
      lead_id: await newLead(),
    })
    assert.equal(response.statusCode, 201, response.body)
    const id = response.json().id as number
    if (done) {
      const completed = await ctx.as(fixtures.users.salesOwner.token, 'POST', `/tasks/${id}/complete`)
      assert.equal(completed.statusCode, 200, completed.body)
    }
    return id
  }

  /** A web form, written straight to the table as a fixture. */
  const newWebForm = () =>
    ctx.db
      .insertInto('web_forms')
      .values({ name: 'Matrix', key: freshName('key') })
      .returning(['id', 'key'])
      .executeTakeFirstOrThrow()

  /** A note by the owning sales user on a new lead of theirs. */
  const newActivity = async () => {
    const id = await newLead()
    const response = await ctx.as(fixtures.users.salesOwner.token, 'POST', `/leads/${id}/activities`, {
      type: 'note',
      body: 'Nota',
    })
    assert.equal(response.statusCode, 201, response.body)
    return { id, activity_id: response.json().id as number }
  }

  /**
   * A webhook for an event type nothing publishes yet, so that no delivery runs in the background.
   * `unreachable`: written straight to the table with a loopback URL, which every delivery refuses
   * at once, so that a ping or a retry answers without waiting on the network.
   */
  const newWebhook = async (unreachable = false) => {
    if (unreachable) {
      const row = await ctx.db
        .insertInto('webhooks')
        .values({ url: 'https://127.0.0.1:9/hook', events: ['client.merged'], secret: `whsec_${'A'.repeat(43)}=` })
        .returning('id')
        .executeTakeFirstOrThrow()
      return row.id
    }
    const response = await ctx.as(ctx.adminToken, 'POST', '/webhooks', WEBHOOK)
    assert.equal(response.statusCode, 201, response.body)
    return response.json().id as number
  }
  /** A view saved by the owning sales user. */
  const newView = async (shared: boolean) => {
    const response = await ctx.as(fixtures.users.salesOwner.token, 'POST', '/views', {
      name: 'Matrix view',
      resource: 'clients',
      shared,
    })
    assert.equal(response.statusCode, 201, response.body)
    return response.json().id as number
  }
  /** A delivery that failed for good, so that no worker takes it up on its own. */
  const newDelivery = async () => {
    const webhookId = await newWebhook(true)
    const event = await ctx.db.selectFrom('events').select('id').orderBy('id').executeTakeFirstOrThrow()
    const delivery = await ctx.db
      .insertInto('webhook_deliveries')
      .values({ webhook_id: webhookId, event_id: event.id, resource_key: 'client:0', state: 'failed', attempts: 7 })
      .returning('id')
      .executeTakeFirstOrThrow()
    return { id: webhookId, delivery_id: delivery.id }
  }

  /** Valid params and bodies per operationId; whatever a call may change or delete is made fresh for it. */
  const CALLS: Record<string, (who: Principal) => Promise<Call>> = {
    getHealth: async () => ({}),
    getApiIndex: async () => ({}),
    getReadiness: async () => ({}),
    login: async () => ({ body: { username: fixtures.loginUser.username, password: fixtures.loginUser.password } }),
    getCurrentUser: async () => ({}),
    updateCurrentUser: async () => ({ body: { locale: 'en' } }),
    changeOwnPassword: async (who) => {
      // It ends the caller's tokens: use a fresh user of the principal's role.
      if (who === 'anonymous') return { body: { current_password: 'whatever-it-is', new_password: 'a-new-password' } }
      const user = await ctx.createUser(roleOf(who))
      return { token: user.token, body: { current_password: user.password, new_password: 'a-new-password' } }
    },
    createApiKey: async () => ({ body: { name: 'matrix', scopes: ['read', 'write'] } }),
    listApiKeys: async () => ({ query: { all: 'true' } }),
    deleteApiKey: async () => {
      // Another user's key: the admin's own.
      const response = await ctx.as(ctx.adminToken, 'POST', '/auth/api-keys', { name: 'admin key', scopes: ['read'] })
      assert.equal(response.statusCode, 201, response.body)
      return { params: { id: response.json().id } }
    },
    listUsers: async () => ({ query: { role: 'sales' } }),
    createUser: async () => ({ body: { username: freshName('matrix'), password: 'a-long-password', role: 'sales' } }),
    getUser: async () => ({ params: { id: fixtures.users.salesOwner.id } }),
    updateUser: async () => ({ params: { id: (await ctx.createUser('sales')).id }, body: { full_name: 'Renamed' } }),
    deleteUser: async () => ({ params: { id: (await ctx.createUser('sales')).id } }),
    listAuditLogs: async () => ({ query: { table_name: 'clients' } }),
    listClients: async () => ({ query: { sort: '-created_at' } }),
    createClient: async () => ({
      body: { client_type: 'natural', contact_name: 'Nuevo Cliente', phone: uniquePhone() },
    }),
    searchClients: async () => ({ query: { q: 'matrix' } }),
    getClientByPhone: async () => ({ params: { phone: fixtures.clientPhone } }),
    getClient: async () => ({ params: { id: fixtures.clientId } }),
    updateClient: async () => ({ params: { id: await newClient() }, body: { address: 'Avenida Bolívar 45' } }),
    deleteClient: async () => ({ params: { id: await newClient() } }),
    getClientHistory: async () => ({ params: { id: fixtures.clientId } }),
    listLeads: async () => ({ query: { status: 'new' } }),
    createLead: async () => ({ body: { client_id: fixtures.clientId, channel: 'whatsapp', sales_notes: 'Llamar' } }),
    getLeadStats: async () => ({}),
    getLead: async () => ({ params: { id: fixtures.leadId } }),
    updateLead: async () => ({ params: { id: await newLead() }, body: { sales_notes: 'Llamar el lunes' } }),
    changeLeadStatus: async () => ({ params: { id: await newLead() }, body: { status: 'contacted' } }),
    assignLead: async () => ({ params: { id: await newLead() }, body: { assigned_to: fixtures.users.salesOther.id } }),
    deleteLead: async () => ({ params: { id: await newLead() } }),
    getLeadHistory: async () => ({ params: { id: fixtures.leadId } }),
    listLeadActivities: async () => ({ params: { id: fixtures.leadId } }),
    addLeadActivity: async () => ({ params: { id: fixtures.leadId }, body: { type: 'note', body: 'Llamar' } }),
    getLeadActivity: async () => ({ params: await newActivity() }),
    deleteLeadActivity: async () => ({ params: await newActivity() }),
    getOwnNotificationSettings: async () => ({}),
    updateOwnNotificationSettings: async () => ({ body: { inbound_lead: false } }),
    listTasks: async () => ({ query: { status: 'due_today', assigned_to: 'me' } }),
    getAgenda: async () => ({}),
    createTask: async () => ({
      body: { title: 'Llamar', due_at: '2026-12-09T14:00:00Z', client_id: fixtures.clientId },
    }),
    getTask: async () => ({ params: { id: await newTask() } }),
    updateTask: async () => ({ params: { id: await newTask() }, body: { title: 'Llamar otra vez' } }),
    deleteTask: async () => ({ params: { id: await newTask() } }),
    completeTask: async () => ({ params: { id: await newTask() } }),
    reopenTask: async () => ({ params: { id: await newTask(true) } }),
    getAssignmentRules: async () => ({}),
    replaceAssignmentRules: async () => ({ body: { mode: 'round_robin', users: [fixtures.users.salesOwner.id] } }),
    getPipelineSettings: async () => ({}),
    replacePipelineSettings: async () => ({ body: { response_target: 'PT2H', holidays: ['2026-12-25'] } }),
    createWebForm: async () => ({ body: { name: 'Contacto', allowed_origins: ['https://www.example.com'] } }),
    listWebForms: async () => ({ query: { limit: '10' } }),
    getWebForm: async () => ({ params: { id: (await newWebForm()).id } }),
    updateWebForm: async () => ({ params: { id: (await newWebForm()).id }, body: { name: 'Renamed' } }),
    rotateWebFormKey: async () => ({ params: { id: (await newWebForm()).id } }),
    deleteWebForm: async () => ({ params: { id: (await newWebForm()).id } }),
    submitWebForm: async () => ({
      params: { key: (await newWebForm()).key },
      body: { name: 'Formulario', phone: uniquePhone(), message: 'Hola' },
    }),
    createWebhook: async () => ({ body: WEBHOOK }),
    listWebhooks: async () => ({ query: { limit: '10' } }),
    getWebhook: async () => ({ params: { id: fixtures.webhookId } }),
    updateWebhook: async () => ({ params: { id: await newWebhook() }, body: { description: 'Renamed' } }),
    deleteWebhook: async () => ({ params: { id: await newWebhook() } }),
    rotateWebhookSecret: async () => ({ params: { id: await newWebhook() } }),
    listWebhookDeliveries: async () => ({ params: { id: fixtures.webhookId } }),
    retryWebhookDelivery: async () => ({ params: await newDelivery() }),
    pingWebhook: async () => ({ params: { id: await newWebhook(true) } }),
    exportClients: async () => ({ query: { format: 'csv' } }),
    exportLeads: async () => ({ query: { format: 'xlsx' } }),
    importClients: async () => ({ contentType: 'text/csv', body: `nombre,telefono\nImportado,${uniquePhone()}\n` }),
    search: async () => ({ query: { q: 'matrix', types: 'clients,leads' } }),
    createView: async () => ({ body: { name: 'Nuevos', resource: 'leads', filters: { status: ['new'] } } }),
    listViews: async () => ({ query: { resource: 'leads' } }),
    getView: async () => ({ params: { id: await newView(false) } }),
    updateView: async () => ({ params: { id: await newView(true) }, body: { name: 'Renombrada' } }),
    deleteView: async () => ({ params: { id: await newView(true) } }),
    mergeClients: async () => ({ params: { id: await newClient() }, body: { from_id: await newClient() } }),
    listTrash: async () => ({ query: { type: 'leads' } }),
    bulkLeads: async () => ({ body: { action: 'status', status: 'contacted', ids: [await newLead()] } }),
    restoreClient: async () => ({ params: { id: await trashed('clients', await newClient()) } }),
    restoreLead: async () => ({ params: { id: await trashed('leads', await newLead()) } }),
    purgeTrashed: async () => ({ params: { type: 'clients', id: await trashed('clients', await newClient()) } }),
    importLeads: async () => ({
      query: { mode: 'upsert' },
      contentType: 'text/csv',
      body: `telefono,canal\n${fixtures.clientPhone},instagram\n`,
    }),
    verifyWhatsAppWebhook: async () => ({
      query: { 'hub.mode': 'subscribe', 'hub.verify_token': WHATSAPP.verifyToken, 'hub.challenge': '42' },
    }),
    receiveWhatsAppNotification: async () => ({
      contentType: 'application/json',
      body: WHATSAPP_NOTIFICATION,
      headers: {
        'x-hub-signature-256': `sha256=${createHmac('sha256', WHATSAPP.appSecret).update(WHATSAPP_NOTIFICATION).digest('hex')}`,
      },
    }),
    // A template: it may go out at any time, whatever the lead's last inbound message.
    sendLeadWhatsApp: async () => ({
      params: { id: fixtures.leadId },
      body: { template: { name: 'seguimiento', language: 'es' } },
    }),
  }

  before(async () => {
    graph = await startFakeGraphApi()
    ctx = await startTestContext({
      WHATSAPP_VERIFY_TOKEN: WHATSAPP.verifyToken,
      WHATSAPP_APP_SECRET: WHATSAPP.appSecret,
      WHATSAPP_ACCESS_TOKEN: graph.accessToken,
      WHATSAPP_PHONE_NUMBER_ID: graph.phoneNumberId,
      WHATSAPP_GRAPH_URL: graph.url,
    })
    const users = {
      salesOwner: await ctx.createUser('sales'),
      salesOther: await ctx.createUser('sales'),
      management: await ctx.createUser('management'),
    }
    const clientPhone = uniquePhone()
    const client = await ctx.as(ctx.adminToken, 'POST', '/clients', {
      client_type: 'juridical',
      contact_name: 'Matrix Contact',
      company_name: 'Matrix C.A.',
      phone: clientPhone,
    })
    assert.equal(client.statusCode, 201, client.body)
    fixtures = {
      users,
      loginUser: await ctx.createUser('sales'),
      clientId: client.json().id,
      clientPhone,
      leadId: 0,
      webhookId: 0,
    }
    fixtures.leadId = await newLead()
    fixtures.webhookId = await newWebhook()
    tokens = {
      anonymous: undefined,
      salesOwner: users.salesOwner.token,
      salesOther: users.salesOther.token,
      management: users.management.token,
      admin: ctx.adminToken,
    }
  })
  after(async () => {
    await ctx?.close()
    await graph?.close()
  })

  it('answers every operation of the OpenAPI document as the Roles table says, for each kind of caller', async () => {
    const documentResponse = await ctx.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(documentResponse.statusCode, 200)
    const document = documentResponse.json() as {
      paths: Record<string, Record<string, { operationId?: string }>>
    }
    const operations: { method: string; path: string; operationId: string }[] = []
    const withoutId: string[] = []
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (!['get', 'put', 'post', 'patch', 'delete', 'head', 'options', 'trace'].includes(method)) continue
        if (operation.operationId)
          operations.push({ method: method.toUpperCase(), path, operationId: operation.operationId })
        else withoutId.push(`${method.toUpperCase()} ${path}`)
      }
    }
    assert.ok(operations.length >= 28, `only ${operations.length} operations in the document`)

    const mismatches: string[] = []
    for (const { method, path, operationId } of operations) {
      const expected = EXPECTED[operationId]
      const prepare = CALLS[operationId]
      if (!expected || !prepare) continue
      for (const who of PRINCIPALS) {
        const call: Call = await prepare(who)
        const url: string = path.replace(/\{(\w+)\}/g, (_, name: string) => {
          const value = call.params?.[name]
          assert.notEqual(value, undefined, `${operationId}: no value for {${name}}`)
          return encodeURIComponent(String(value))
        })
        const query = call.query ? `?${new URLSearchParams(call.query)}` : ''
        const token = who === 'anonymous' ? undefined : (call.token ?? tokens[who])
        const auditRowsBefore = await countRows(ctx.db, 'audit_logs')
        const response = call.contentType
          ? await ctx.inject({
              method: method as InjectOptions['method'],
              url: `${url}${query}`,
              headers: {
                'content-type': call.contentType,
                ...call.headers,
                ...(token && { authorization: `Bearer ${token}` }),
              },
              payload: call.body as string,
            })
          : await ctx.as(token, method as InjectOptions['method'], `${url}${query}`, call.body)
        const label: string = `${operationId} (${method} ${url}) as ${who}`
        if (response.statusCode !== expected[who]) {
          mismatches.push(`${label}: ${response.statusCode}, expected ${expected[who]}: ${response.body.slice(0, 200)}`)
          continue
        }
        if (response.statusCode >= 400) {
          assert.match(String(response.headers['content-type']), /^application\/problem\+json/, label)
          assert.equal(problemOf(response).status, response.statusCode, label)
          // A refused call changes nothing, so it leaves no audit row either.
          assert.equal(await countRows(ctx.db, 'audit_logs'), auditRowsBefore, `${label} wrote an audit row`)
        }
      }
    }

    const documented = operations.map((operation) => operation.operationId)
    assert.equal(new Set(documented).size, documented.length, 'operationIds are unique')
    // One report, so that a failure shows every problem at once.
    assert.deepEqual(
      {
        operationsWithoutId: withoutId,
        operationsWithoutRow: documented.filter((id) => !(id in EXPECTED)),
        rowsWithoutOperation: Object.keys(EXPECTED).filter((id) => !documented.includes(id)),
        operationsWithoutCall: documented.filter((id) => !(id in CALLS)),
        callsWithoutOperation: Object.keys(CALLS).filter((id) => !documented.includes(id)),
        mismatches,
      },
      {
        operationsWithoutId: [],
        operationsWithoutRow: [],
        rowsWithoutOperation: [],
        operationsWithoutCall: [],
        callsWithoutOperation: [],
        mismatches: [],
      },
    )
  })

  it('keeps the body-dependent rules of the Roles table for sales', async () => {
    const { salesOwner, salesOther } = fixtures.users
    const auditRowsBefore = await countRows(ctx.db, 'audit_logs')
    const refusals: [string, LightMyRequestResponse, number][] = [
      [
        'sales create a lead assigned to someone else',
        await ctx.as(salesOwner.token, 'POST', '/leads', {
          client_id: fixtures.clientId,
          channel: 'web',
          assigned_to: salesOther.id,
        }),
        403,
      ],
      [
        'sales write admin_notes on their own lead',
        await ctx.as(salesOwner.token, 'PATCH', `/leads/${fixtures.leadId}`, { admin_notes: 'mine now' }),
        403,
      ],
    ]
    const closed = await newLead()
    assert.equal(
      (await ctx.as(ctx.adminToken, 'PATCH', `/leads/${closed}/status`, { status: 'closed' })).statusCode,
      200,
    )
    const closedRows = await countRows(ctx.db, 'audit_logs')
    refusals.push([
      'sales reopen their own closed lead',
      await ctx.as(salesOwner.token, 'PATCH', `/leads/${closed}/status`, { status: 'contacted' }),
      409,
    ])
    for (const [label, response, status] of refusals) {
      assert.equal(response.statusCode, status, `${label}: ${response.body}`)
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/, label)
    }
    assert.equal(await countRows(ctx.db, 'audit_logs'), closedRows)
    // The lead and its closing, and the assignment and status change on its timeline.
    assert.equal(
      closedRows,
      auditRowsBefore + 4,
      'only the fixture lead, its closing and their timeline rows were written',
    )
    const lead = (await ctx.as(ctx.adminToken, 'GET', `/leads/${fixtures.leadId}`)).json()
    assert.equal(lead.admin_notes, null)
    // Management may reopen the same lead: the 409 above was the role's, not the transition's.
    const reopened = await ctx.as(fixtures.users.management.token, 'PATCH', `/leads/${closed}/status`, {
      status: 'contacted',
    })
    assert.equal(reopened.statusCode, 200, reopened.body)
  })

  it('refuses bad tokens and Authorization headers on protected routes with 401 problem+json', async () => {
    const secret = ctx.config.jwtSecret as string
    const now = Math.floor(Date.now() / 1000)
    const liveAdmin = await ctx.createUser('admin')
    const adminClaims = claimsOf(liveAdmin.token)

    const deletedAdmin = await ctx.createUser('admin')
    const deletedManager = await ctx.createUser('management')
    for (const user of [deletedAdmin, deletedManager]) {
      assert.equal((await ctx.as(user.token, 'GET', '/clients')).statusCode, 200, 'the token worked before')
      assert.equal((await ctx.as(ctx.adminToken, 'DELETE', `/users/${user.id}`)).statusCode, 204)
    }

    const [salesHeader, , salesSignature] = fixtures.users.salesOwner.token.split('.')
    const promotedPayload = base64url({ ...claimsOf(fixtures.users.salesOwner.token), role: 'admin' })
    const promoted = `${salesHeader}.${promotedPayload}.${salesSignature}`

    const header = { alg: 'HS256', typ: 'JWT' }
    const liveClaims = { ...adminClaims, iat: now, exp: now + 600 }
    // The control: the same hand-made claims, signed with the right secret and not expired, pass.
    const control = handMadeToken(header, liveClaims, secret)
    for (const url of ['/clients', '/users']) {
      assert.equal((await ctx.as(control, 'GET', url)).statusCode, 200, `control on ${url}`)
    }

    const authorizations: Record<string, string> = {
      'a deleted admin': `Bearer ${deletedAdmin.token}`,
      'a deleted manager': `Bearer ${deletedManager.token}`,
      expired: `Bearer ${handMadeToken(header, { ...adminClaims, iat: now - 7200, exp: now - 3600 }, secret)}`,
      'another secret': `Bearer ${handMadeToken(header, liveClaims, 'another-secret-of-enough-length-000000')}`,
      'alg none': `Bearer ${handMadeToken({ alg: 'none', typ: 'JWT' }, liveClaims)}`,
      'role claim edited to admin': `Bearer ${promoted}`,
      'Bearer alone': 'Bearer',
      'Bearer and a space': 'Bearer ',
      'Bearer x.y.z': 'Bearer x.y.z',
      Basic: `Basic ${Buffer.from(`${liveAdmin.username}:${liveAdmin.password}`).toString('base64')}`,
      'a 10 kB header': `Bearer ${'a'.repeat(10 * 1024)}`,
      'a 10 kB token-shaped header': `Bearer ${liveAdmin.token}.${'A'.repeat(10 * 1024)}`,
    }
    for (const url of ['/clients', '/users']) {
      for (const [name, authorization] of Object.entries(authorizations)) {
        const response = await ctx.inject({ method: 'GET', url, headers: { authorization } })
        const label = `${name} on GET ${url}`
        assert.equal(response.statusCode, 401, `${label}: ${response.body.slice(0, 200)}`)
        assert.match(String(response.headers['content-type']), /^application\/problem\+json/, label)
        assert.equal(problemOf(response).status, 401, label)
        assert.equal(problemOf(response).code, 'unauthorized', label)
        assert.ok(!response.body.includes(secret), `${label}: the body carries the secret`)
      }
    }
  })
})
