import { Type } from '@sinclair/typebox'
import { PASSWORD_MAX_LENGTH, Password } from '../auth/passwords.js'

export const LoginSchema = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 100, examples: ['admin'] }),
    password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, examples: ['admin123'] }),
    // Sent by OAuth2 password-flow clients such as Swagger UI's Authorize dialog; ignored.
    grant_type: Type.Optional(Type.Literal('password')),
    scope: Type.Optional(Type.String({ maxLength: 1000 })),
    client_id: Type.Optional(Type.String({ maxLength: 1000 })),
    client_secret: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { $id: 'Login', additionalProperties: false, examples: [{ username: 'admin', password: 'admin123' }] },
)

export const TokenSchema = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the token expires' }),
  },
  { $id: 'Token', additionalProperties: false },
)

export const PasswordChangeSchema = Type.Object(
  {
    current_password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, writeOnly: true }),
    new_password: Password,
  },
  {
    $id: 'PasswordChange',
    additionalProperties: false,
    examples: [{ current_password: 'admin123', new_password: 'a-much-longer-secret' }],
  },
)

export const authSchemas = [LoginSchema, TokenSchema, PasswordChangeSchema]
