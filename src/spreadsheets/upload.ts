import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type {} from '@fastify/multipart'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { DomainError, ValidationError } from '../errors/domain.js'
import type { SheetFormat } from './reader.js'
import { XLSX_MEDIA_TYPE } from './writer.js'
import { assertInflatedWithin } from './zip.js'

export const MAX_IMPORT_BYTES = 50 * 1024 * 1024
export const CSV_MEDIA_TYPES = ['text/csv', 'application/csv']
export const IMPORT_MEDIA_TYPES = [...CSV_MEDIA_TYPES, XLSX_MEDIA_TYPE]

const tooLarge = () =>
  new DomainError(
    413,
    'file_too_large',
    `The file is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB, the limit of one import`,
  )

/** Passes bytes through until there are more than MAX_IMPORT_BYTES, then fails with a 413. */
class ByteLimit extends Transform {
  private seen = 0
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > MAX_IMPORT_BYTES) callback(tooLarge())
    else callback(null, chunk)
  }
}

function formatOf(mediaType: string | undefined, filename?: string): SheetFormat | undefined {
  const extension = filename?.toLowerCase().match(/\.(csv|txt|xlsx)$/)?.[1]
  if (extension === 'xlsx') return 'xlsx'
  if (extension) return 'csv'
  const type = mediaType?.split(';')[0]?.trim().toLowerCase()
  if (type === XLSX_MEDIA_TYPE) return 'xlsx'
  if (type && CSV_MEDIA_TYPES.includes(type)) return 'csv'
  return undefined
}

/** The uploaded file: a multipart field `file`, or the raw body with its content type, as a stream. */
async function spreadsheetUpload(request: FastifyRequest): Promise<{ stream: Readable; format: SheetFormat }> {
  if (Number(request.headers['content-length']) > MAX_IMPORT_BYTES + 64 * 1024) throw tooLarge()
  let source: Readable
  let format: SheetFormat | undefined
  if (request.isMultipart()) {
    const part = await request.file({ limits: { fileSize: MAX_IMPORT_BYTES + 1, files: 1, fields: 0 } })
    if (part?.fieldname !== 'file') {
      throw ValidationError.field('file', 'is required: send the spreadsheet as the multipart field "file"')
    }
    source = part.file
    format = formatOf(part.mimetype, part.filename)
    if (!format) {
      part.file.resume()
      throw ValidationError.field('file', `must be a .csv or .xlsx file (${CSV_MEDIA_TYPES[0]} or ${XLSX_MEDIA_TYPE})`)
    }
  } else {
    format = formatOf(request.headers['content-type'])
    if (!format || !(request.body as Readable | undefined)?.pipe) {
      throw new DomainError(
        415,
        'unsupported_media_type',
        `Send a CSV or XLSX file: multipart/form-data with a field "file", or the raw body as text/csv or ${XLSX_MEDIA_TYPE}`,
      )
    }
    source = request.body as Readable
  }
  const limited = new ByteLimit()
  source.on('error', (error) => limited.destroy(error))
  return { stream: source.pipe(limited), format }
}

export interface UploadLimits {
  /** A client that sends nothing for this long gets a 408. */
  idleTimeoutMs: number
  /** What the entries of a zip file (an XLSX) may unpack to, in all. */
  maxInflatedBytes: number
}

export interface ReceivedUpload {
  path: string
  format: SheetFormat
  /** Deletes the file. */
  remove(): Promise<void>
}

/**
 * Receives the whole file into a private temporary folder before anything reads it, so that a slow
 * client holds a socket and a file, never a database connection; an XLSX is then unpacked once,
 * counting, so that no parser meets a zip bomb.
 */
export async function receiveUpload(
  request: FastifyRequest,
  reply: FastifyReply,
  limits: UploadLimits,
): Promise<ReceivedUpload> {
  let timer: NodeJS.Timeout | undefined
  let expire: (error: DomainError) => void = () => {}
  const expired = new Promise<never>((_resolve, reject) => {
    expire = reject
  })
  expired.catch(() => {})
  const touch = () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      // The rest of the body will not be read: the connection ends with the answer.
      reply.header('connection', 'close')
      expire(
        new DomainError(
          408,
          'request_timeout',
          `The upload stopped: nothing arrived for ${limits.idleTimeoutMs / 1000} s`,
        ),
      )
    }, limits.idleTimeoutMs)
  }
  touch()
  const folder = await mkdtemp(join(tmpdir(), 'mini-crm-upload-'))
  const remove = () => rm(folder, { recursive: true, force: true })
  let source: Readable | undefined
  try {
    const opening = spreadsheetUpload(request)
    opening.catch(() => {})
    const upload = await Promise.race([opening, expired])
    source = upload.stream
    const path = join(folder, `upload.${upload.format}`)
    const activity = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        touch()
        callback(null, chunk)
      },
    })
    const writing = pipeline(upload.stream, activity, createWriteStream(path, { mode: 0o600 }))
    writing.catch(() => {})
    await Promise.race([writing, expired])
    clearTimeout(timer)
    if (upload.format === 'xlsx') await assertInflatedWithin(path, limits.maxInflatedBytes)
    return { path, format: upload.format, remove }
  } catch (error) {
    source?.destroy()
    await remove()
    throw error
  } finally {
    clearTimeout(timer)
  }
}
