interface PgError {
  code?: string
  constraint?: string
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const pgError = error as PgError
  return pgError?.code === '23505' && (constraint === undefined || pgError.constraint === constraint)
}

export function isForeignKeyViolation(error: unknown, constraint?: string): boolean {
  const pgError = error as PgError
  return pgError?.code === '23503' && (constraint === undefined || pgError.constraint === constraint)
}

const UNAVAILABLE_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
])
// Class 08 (connection exception), 57P01-57P03 (server shutting down or not yet up), 53300 (too many connections).
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/

/**
 * PostgreSQL cancelled this transaction because it and another waited on each other (a deadlock), or
 * could not be serialised with it: nothing it did was kept, and trying again will do.
 */
export function isConcurrencyFailure(error: unknown): boolean {
  const code = (error as PgError)?.code
  return code === '40P01' || code === '40001'
}

/** True when the error means "the database could not be reached", as opposed to a bad query. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const { code, syscall } = error as { code?: unknown; syscall?: unknown }
  if (typeof code === 'string' && (UNAVAILABLE_SYSTEM_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true
  // The embedded database's Unix socket is gone while it is not served.
  if (code === 'ENOENT' && syscall === 'connect') return true
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/i.test(
    error.message,
  )
}

/** A statement cancelled by statement_timeout, or a query the server never answered in time. */
export function isDatabaseTimeout(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  return (error as { code?: unknown }).code === '57014' || /Query read timeout/.test(error.message)
}
