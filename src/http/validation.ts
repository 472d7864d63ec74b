import type { TSchema } from '@sinclair/typebox'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'
import type { FieldError } from '../errors/domain.js'

/**
 * Bodies are JSON and must match their types exactly; query strings and paths are text,
 * so their numbers and booleans are read from strings (and single values become arrays).
 * Unknown fields are refused, never silently dropped.
 */
export function createValidatorCompiler(sharedSchemas: TSchema[]): FastifySchemaCompiler<TSchema> {
  const strict = makeAjv({ coerceTypes: false }, sharedSchemas)
  const fromText = makeAjv({ coerceTypes: 'array' }, sharedSchemas)
  return ({ schema, httpPart }) => refusingNul((httpPart === 'body' ? strict : fromText).compile(schema))
}

/**
 * PostgreSQL cannot hold U+0000 in text or jsonb (SQLSTATE 22021, 22P05), so a NUL anywhere in a
 * request, in a value or in a key, is a validation failure naming its field rather than a 500.
 */
function refusingNul(validate: ValidateFunction): ValidateFunction {
  const checked = ((data: unknown) => {
    const valid = validate(data)
    const nul = nulPaths(data).map(
      (instancePath): ErrorObject => ({
        keyword: 'nul',
        instancePath,
        schemaPath: '#',
        params: {},
        message: 'must not contain a NUL character (U+0000)',
      }),
    )
    checked.errors = nul.length > 0 ? [...nul, ...(validate.errors ?? [])] : validate.errors
    return valid && nul.length === 0
  }) as ValidateFunction
  return checked
}

/** JSON pointers to every string (or key) holding a NUL; iterative, so deep nesting cannot overflow the stack. */
function nulPaths(data: unknown): string[] {
  const found: string[] = []
  const pending: Array<[unknown, string]> = [[data, '']]
  while (pending.length > 0) {
    const [value, path] = pending.pop() as [unknown, string]
    if (typeof value === 'string') {
      if (value.includes('\u0000')) found.push(path)
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        const child = `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`
        if (key.includes('\u0000')) found.push(child)
        else pending.push([inner, child])
      }
    }
  }
  return found
}

/**
 * A schema's own message for a keyword that fails, as `{[ERROR_MESSAGE]: {maximum: '…'}}`: where the
 * generic one ("must be <= 10000") would not say what to do instead. An OpenAPI extension, so the
 * document may carry it.
 */
export const ERROR_MESSAGE = 'x-error-message'

function makeAjv(options: { coerceTypes: boolean | 'array' }, sharedSchemas: TSchema[]): Ajv {
  const ajv = new Ajv({
    ...options,
    allErrors: true,
    removeAdditional: false,
    useDefaults: true,
    strict: false,
    // Each error carries its schema, where fieldErrors finds an ERROR_MESSAGE.
    verbose: true,
  })
  addFormats.default(ajv)
  for (const schema of sharedSchemas) ajv.addSchema(schema)
  return ajv
}

/** One entry per bad field, named as the caller sent it. */
export function fieldErrors(errors: ErrorObject[], context: string): FieldError[] {
  const byField = new Map<string, string>()
  for (const error of errors) {
    if (error.keyword === 'anyOf' || error.keyword === 'oneOf' || error.keyword === 'if') continue
    const path = error.instancePath.split('/').filter(Boolean)
    let message = error.message ?? 'is invalid'
    switch (error.keyword) {
      case 'required':
        path.push(String(error.params.missingProperty))
        message = 'is required'
        break
      case 'additionalProperties':
        path.push(String(error.params.additionalProperty))
        message = 'is not an accepted field'
        break
      case 'enum':
        message = `must be one of: ${(error.params.allowedValues as unknown[]).join(', ')}`
        break
    }
    const own = (error.parentSchema?.[ERROR_MESSAGE] as Record<string, string> | undefined)?.[error.keyword]
    if (own) message = own
    // A repeated query parameter is one field to the caller: `status`, not `status.1`.
    const sent = context === 'querystring' ? path.slice(0, 1) : path
    const field = sent.length > 0 ? sent.map(decodePointer).join('.') : context
    if (!byField.has(field)) byField.set(field, message)
  }
  return [...byField].map(([field, message]) => ({ field, message }))
}

function decodePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~')
}
