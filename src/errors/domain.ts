/** Errors the services throw; the error handler turns each into a problem+json response. */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message)
    this.name = new.target.name
  }
}

export interface FieldError {
  field: string
  message: string
}

export class ValidationError extends DomainError {
  constructor(readonly errors: FieldError[]) {
    super(400, 'validation_failed', errors.map((error) => `${error.field}: ${error.message}`).join('; '), {
      errors,
    })
  }

  static field(field: string, message: string): ValidationError {
    return new ValidationError([{ field, message }])
  }
}

export class NotFoundError extends DomainError {
  constructor(resource: string) {
    super(404, 'not_found', `${resource} not found`)
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, message: string, extra: Record<string, unknown> = {}) {
    super(409, code, message, extra)
  }
}

export class ForbiddenError extends DomainError {
  constructor(message = 'Your role may not do this', code = 'forbidden') {
    super(403, code, message)
  }
}

/** An If-Match that no longer holds: someone changed the resource since the caller read it. */
export class PreconditionFailedError extends DomainError {
  constructor(message = 'The resource has changed since you read it; GET it again and retry with its new ETag') {
    super(412, 'precondition_failed', message)
  }
}

export class UnauthorizedError extends DomainError {
  constructor(message = 'Missing, invalid or expired token', code = 'unauthorized') {
    super(401, code, message)
  }
}

export class TooManyRequestsError extends DomainError {
  constructor(
    readonly retryAfterSeconds: number,
    message = 'Too many failed attempts; try again later',
  ) {
    super(429, 'too_many_attempts', message)
  }
}
