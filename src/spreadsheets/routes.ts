import { createReadStream } from 'node:fs'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { TSchema } from '@sinclair/typebox'
import type { ValidateFunction } from 'ajv'
import type { FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify'
import { writeAudit } from '../audit/write.js'
import type { AuthenticatedActor } from '../auth/authenticate.js'
import type { ClientRules } from '../clients/queries.js'
import { ClientTypeSchema, ClientUpdateSchema } from '../clients/schemas.js'
import type { Database } from '../db/database.js'
import type { AuditedTable } from '../db/types.js'
import { problems, ref } from '../http/schemas.js'
import { createValidatorCompiler, fieldErrors } from '../http/validation.js'
import { applyView } from '../views/apply.js'
import type { ImportRules } from './client-import.js'
import { importClients } from './client-import.js'
import { CLIENT_EXPORT_COLUMNS, clientExportBatches, LEAD_EXPORT_COLUMNS, leadExportBatches } from './exports.js'
import { importLeads } from './lead-import.js'
import { readSheet, type SheetRow } from './reader.js'
import {
  ClientExportQuery,
  exportResponse,
  ImportQuery,
  ImportResultSchema,
  importBody,
  LeadExportQuery,
} from './schemas.js'
import { IMPORT_MEDIA_TYPES, MAX_IMPORT_BYTES, receiveUpload, type UploadLimits } from './upload.js'
import {
  chooseFormat,
  type ExportColumn,
  type ExportFormat,
  exportFilename,
  MEDIA_TYPES,
  spreadsheetStream,
} from './writer.js'

export const spreadsheetRoutes: FastifyPluginAsyncTypebox<{
  db: Database
  rules: ClientRules
  uploads: UploadLimits
}> = async (app, { db, rules, uploads }) => {
  app.addHook('onRequest', app.authenticate)

  // A row's client fields obey the rules of POST /clients and PATCH /clients (lengths, email format),
  // through the validator that checks their bodies.
  const validateClientFields = createValidatorCompiler([ClientTypeSchema])({
    schema: ClientUpdateSchema as TSchema,
    httpPart: 'body',
    method: 'POST',
    url: '/clients/import',
  }) as ValidateFunction
  const importRules: ImportRules = {
    ...rules,
    checkClientFields: (input) =>
      validateClientFields(input) ? [] : fieldErrors(validateClientFields.errors ?? [], 'body'),
  }

  // An upload is received into a temporary file (never into memory), which the import then reads row by row.
  app.addContentTypeParser(IMPORT_MEDIA_TYPES, (_request, payload, done) => done(null, payload))
  await app.register(multipart, { limits: { fileSize: MAX_IMPORT_BYTES + 1, files: 1 } })

  // The documented request bodies are files that the handler reads itself: only the query is validated.
  const appCompiler = app.validatorCompiler as FastifySchemaCompiler<unknown>
  const queryOnly: FastifySchemaCompiler<unknown> = (route) =>
    route.httpPart === 'body' ? () => true : appCompiler(route)

  /** Streams the rows, then writes the export's audit row with what was sent. */
  async function sendExport<Row>(
    request: FastifyRequest,
    reply: FastifyReply,
    table: AuditedTable,
    format: ExportFormat,
    filters: Record<string, unknown>,
    columns: ExportColumn<Row>[],
    batches: AsyncGenerator<Row[]>,
  ) {
    // The first batch is read before answering, so a bad filter or an unreachable database is
    // still a problem+json answer rather than a cut stream.
    const first = await batches.next()
    async function* all(): AsyncGenerator<Row[]> {
      if (first.done) return
      yield first.value
      yield* batches
    }
    const actor = request.actor
    const stream = spreadsheetStream(format, columns, all(), async ({ rows, completed }) => {
      try {
        await db.transaction().execute((trx) =>
          writeAudit(trx, actor, {
            table,
            recordId: null,
            action: 'export',
            oldValues: null,
            newValues: { format, filters, row_count: rows, completed },
          }),
        )
      } catch (error) {
        request.log.error(
          { err: { type: (error as Error).name, message: (error as Error).message } },
          'export audit failed',
        )
        throw error
      }
    })
    return reply
      .header('content-type', MEDIA_TYPES[format])
      .header('content-disposition', `attachment; filename="${exportFilename(table, format)}"`)
      .header('cache-control', 'no-store')
      .send(stream)
  }

  // The batches of one list's rows that an export streams, for the actor and the list's filters.
  type ExportBatches = (db: Database, actor: AuthenticatedActor, filters: never) => AsyncGenerator<unknown[]>
  const exports = [
    {
      resource: 'clients' as const,
      operationId: 'exportClients',
      summary: 'Download the clients of the list, with its filters and sort, as CSV or XLSX',
      querystring: ClientExportQuery,
      columns: CLIENT_EXPORT_COLUMNS as ExportColumn<unknown>[],
      batches: clientExportBatches as ExportBatches,
    },
    {
      resource: 'leads' as const,
      operationId: 'exportLeads',
      summary: 'Download the leads of the list (sales users: theirs), with its filters and sort, as CSV or XLSX',
      querystring: LeadExportQuery,
      columns: LEAD_EXPORT_COLUMNS as ExportColumn<unknown>[],
      batches: leadExportBatches as ExportBatches,
    },
  ]
  for (const { resource, operationId, summary, querystring, columns, batches } of exports) {
    app.get(
      `/${resource}/export`,
      {
        preValidation: applyView(db, resource),
        schema: {
          operationId,
          tags: [resource],
          summary,
          querystring,
          response: { 200: exportResponse, ...problems(406) },
        },
      },
      async (request, reply) => {
        const { format, ...filters } = request.query as { format?: ExportFormat } & Record<string, unknown>
        const chosen = chooseFormat(format, request.headers.accept)
        return sendExport(
          request,
          reply,
          resource,
          chosen,
          filters,
          columns,
          batches(db, request.actor, filters as never),
        )
      },
    )
  }

  const importErrors = problems(403, 408, 409, 413, 415, 422)

  /** Receives the file whole, then runs the import on its rows; the file is deleted afterwards. */
  async function withUpload<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    run: (rows: AsyncGenerator<SheetRow>) => Promise<T>,
  ): Promise<T> {
    const upload = await receiveUpload(request, reply, uploads)
    try {
      return await run(readSheet(createReadStream(upload.path), upload.format))
    } finally {
      await upload.remove()
    }
  }

  const imports = [
    {
      resource: 'clients' as const,
      operationId: 'importClients',
      summary: 'Create or update clients from a CSV or XLSX file',
      description:
        'Headers in English or Spanish (contact_name|nombre, phone|telefono|teléfono, email|correo, company_name|empresa, address|direccion, client_type|tipo). A row is matched to a client by its phone, however written. By default a row that fails the check writes nothing (422 with the row errors). Rows are then written in batches, other requests running between them, and the import stays all-or-nothing: when a row meets a change made meanwhile (a phone taken, a lead trashed) or a batch fails, what it had written is undone before the answer (409 import_conflict naming the rows), and an import cut off by a stopped server is undone by the instance running next. With partial=true such a row fails alone and the rest stay. One import at a time: another sent meanwhile is a 409 import_in_progress. Up to 50 MB and 100,000 rows (413); an upload that stops arriving is a 408.',
      run: importClients,
    },
    {
      resource: 'leads' as const,
      operationId: 'importLeads',
      summary: 'Create or update leads from a CSV or XLSX file, creating their clients by phone',
      description:
        "Each row names its client by phone (phone|telefono), created from the row's client cells when absent; channel|canal (default manual), status|estado, assignee_username|asignado (an active user's username), admin_notes, sales_notes|notas. A row is the same lead as the one with its id column, else as its client's most recent lead on that channel. By default a row that fails the check writes nothing (422 with the row errors). Rows are then written in batches, other requests running between them, and the import stays all-or-nothing: when a row meets a change made meanwhile (a phone taken, a lead trashed) or a batch fails, what it had written is undone before the answer (409 import_conflict naming the rows), and an import cut off by a stopped server is undone by the instance running next. With partial=true such a row fails alone and the rest stay. One import at a time: another sent meanwhile is a 409 import_in_progress. Up to 50 MB and 100,000 rows (413); an upload that stops arriving is a 408.",
      run: importLeads,
    },
  ]
  for (const { resource, operationId, summary, description, run } of imports) {
    app.post(
      `/${resource}/import`,
      {
        onRequest: app.requireRole('admin', 'management'),
        validatorCompiler: queryOnly,
        schema: {
          operationId,
          tags: [resource],
          summary,
          description,
          querystring: ImportQuery,
          body: importBody,
          response: { 200: ref(ImportResultSchema), ...importErrors },
        },
      },
      async (request, reply) => {
        const { dry_run: dryRun, mode, partial } = request.query
        return withUpload(request, reply, (rows) =>
          run(db, request.actor, rows, { dryRun, mode, partial }, importRules),
        )
      },
    )
  }
}
