// The part of unzipper's streaming parser (the one ExcelJS reads workbooks with) that zip.ts uses.
declare module 'unzipper' {
  import type { Readable, Transform } from 'node:stream'

  export interface Entry extends Readable {
    path: string
    autodrain(): unknown
  }

  export function Parse(options?: { forceStream?: boolean }): Transform
}
