import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isConcurrencyFailure, isDatabaseTimeout, isDatabaseUnavailable } from '../db/errors.js'
import { DomainError, TooManyRequestsError } from '../errors/domain.js'
import { fieldErrors } from './validation.js'

interface Problem {
  status: number
  code: string
  detail: string
  extra?: Record<string, unknown>
}

// Errors raised by Fastify itself, before a route runs.
const FRAMEWORK_ERRORS: Record<string, Omit<Problem, 'detail'>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'malformed_body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'malformed_json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'malformed_json' },
}

function toProblem(error: FastifyError, request: FastifyRequest): Problem {
  if (error instanceof DomainError) {
    return { status: error.status, code: error.code, detail: error.message, extra: error.extra }
  }
  if (error.validation) {
    const errors = fieldErrors(error.validation as never, error.validationContext ?? 'body')
    return {
      status: 400,
      code: 'validation_failed',
      detail: errors.map((entry) => `${entry.field}: ${entry.message}`).join('; '),
      extra: { errors },
    }
  }
  const known = error.code ? FRAMEWORK_ERRORS[error.code] : undefined
  if (known) return { ...known, detail: error.message }
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return { status: 400, code: 'malformed_json', detail: 'The body is not valid JSON' }
  }
  if (error.code?.startsWith('FST_JWT_') || error.code === 'FAST_JWT_INVALID_SIGNATURE') {
    return { status: 401, code: 'unauthorized', detail: 'Missing, invalid or expired token' }
  }
  if (isDatabaseTimeout(error)) {
    request.log.warn({ err: { message: error.message, code: error.code } }, 'database timeout')
    return { status: 503, code: 'database_timeout', detail: 'The database took too long to answer; try again shortly' }
  }
  if (isConcurrencyFailure(error)) {
    return {
      status: 409,
      code: 'concurrent_change',
      detail:
        'A concurrent change to the same records made the database cancel this one; nothing was written, try again',
    }
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: { message: error.message, code: error.code } }, 'database unavailable')
    return { status: 503, code: 'database_unavailable', detail: 'The database is unreachable; try again shortly' }
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return { status: error.statusCode, code: 'bad_request', detail: error.message }
  }
  // The error's kind and message only: stack traces stay out of the log, as they do out of responses.
  request.log.error({ err: { type: error.name, message: error.message, code: error.code } }, 'unhandled error')
  return { status: 500, code: 'internal_error', detail: 'An unexpected error occurred' }
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  const body = {
    type: 'about:blank',
    title: STATUS_CODES[problem.status] ?? 'Error',
    status: problem.status,
    code: problem.code,
    detail: problem.detail,
    ...problem.extra,
    request_id: reply.request.id,
  }
  // Sent as a string so that no route's response schema can reshape it.
  // Set here too: the router's own errors are answered before the onSend hook that adds it.
  reply.header('x-request-id', reply.request.id)
  // RFC 9110 wants a challenge on every 401; RFC 6750 says which one when a token was sent and refused.
  if (problem.code === 'unauthorized') {
    reply.header(
      'www-authenticate',
      reply.request.headers.authorization
        ? 'Bearer realm="Mini CRM API", error="invalid_token"'
        : 'Bearer realm="Mini CRM API"',
    )
  }
  return reply.code(problem.status).type('application/problem+json').send(JSON.stringify(body))
}

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/**
 * The router's answer to a request it could not even parse (headers too large, a broken request
 * line), written on the socket since no request exists yet: problem+json like every other error.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const problem =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? { status: 431, code: 'headers_too_large', detail: 'The request headers are too large' }
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? { status: 408, code: 'request_timeout', detail: 'The request took too long to arrive' }
        : { status: 400, code: 'malformed_request', detail: 'The request is not valid HTTP' }
  const title = STATUS_CODES[problem.status] ?? 'Error'
  const body = JSON.stringify({ type: 'about:blank', title, ...problem })
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${problem.status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

/** One place where every error becomes application/problem+json (RFC 9457). */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = toProblem(error, request)
    if (error instanceof TooManyRequestsError) reply.header('retry-after', String(error.retryAfterSeconds))
    return sendProblem(reply, problem)
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const allowed = HTTP_METHODS.filter((method) => app.findRoute({ method, url: path }))
    // CORS answers OPTIONS on every path: that alone does not make a path known.
    if (allowed.some((method) => method !== 'OPTIONS')) {
      reply.header('allow', allowed.join(', '))
      return sendProblem(reply, {
        status: 405,
        code: 'method_not_allowed',
        detail: `${path} takes ${allowed.join(', ')}, not ${request.method}`,
      })
    }
    return sendProblem(reply, { status: 404, code: 'not_found', detail: `No route for ${request.method} ${path}` })
  })
}
