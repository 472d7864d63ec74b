import { createReadStream } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type Entry, Parse } from 'unzipper'
import { DomainError, ValidationError } from '../errors/domain.js'

const megabytes = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`

export const inflatedTooLarge = (maxBytes: number) =>
  new DomainError(
    413,
    'file_too_large',
    `The file unpacks to more than ${megabytes(maxBytes)}, the limit of one upload`,
  )

/**
 * Inflates every entry of the zip file at `path` (an XLSX is one) and counts the bytes, without
 * keeping them: a file whose entries unpack to more than `maxBytes` in all is a 413 before any
 * parser trusts it. The entries are read with the same streaming parser ExcelJS uses, so that
 * the entries counted are the entries it will read.
 */
export async function assertInflatedWithin(path: string, maxBytes: number): Promise<void> {
  let total = 0
  const counter = () =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        total += chunk.length
        callback(total > maxBytes ? inflatedTooLarge(maxBytes) : null)
      },
    })
  const entries = Parse({ forceStream: true })
  const reading = pipeline(createReadStream(path), entries)
  try {
    for await (const entry of entries as AsyncIterable<Entry>) await pipeline(entry, counter())
    await reading
  } catch (error) {
    entries.destroy()
    await reading.catch(() => {})
    if (error instanceof DomainError) throw error
    throw ValidationError.field('file', 'is not a readable XLSX file (a broken zip archive)')
  }
}
