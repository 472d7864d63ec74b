import type { TSchema } from '@sinclair/typebox'
import { Ajv, type ErrorObject } from 'ajv'
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
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : fromText).compile(schema)
}

function makeAjv(options: { coerceTypes: boolean | 'array' }, sharedSchemas: TSchema[]): Ajv {
  const ajv = new Ajv({
    ...options,
    allErrors: true,
    removeAdditional: false,
    useDefaults: true,
    strict: false,
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
    const field = path.length > 0 ? path.map(decodePointer).join('.') : context
    if (!byField.has(field)) byField.set(field, message)
  }
  return [...byField].map(([field, message]) => ({ field, message }))
}

function decodePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~')
}
