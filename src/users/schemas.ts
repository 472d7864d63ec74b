import { Type } from '@sinclair/typebox'
import { Password } from '../auth/passwords.js'
import { USER_LOCALES, USER_ROLES } from '../db/enums.js'
import { DateTime, Email, Id, Nullable, NullableDateTime, Page, pageQuery, ref, StringEnum } from '../http/schemas.js'

const RoleSchema = StringEnum(USER_ROLES, { $id: 'Role', description: 'What the user may do' })

export const USERNAME_PATTERN = '^[A-Za-z0-9._-]{3,50}$'
const LocaleSchema = StringEnum(USER_LOCALES, {
  $id: 'Locale',
  description: 'The language of the mails the user gets',
})

const Username = Type.String({
  pattern: USERNAME_PATTERN,
  description: '3–50 of a-z 0-9 . _ -; stored lower-case, unique case-insensitively',
  examples: ['maria.gomez'],
})
const FullName = Type.String({ minLength: 1, maxLength: 200 })
const TimeZone = Type.String({
  minLength: 1,
  maxLength: 100,
  description: 'An IANA time zone; null follows the server’s DEFAULT_TIME_ZONE',
  examples: ['America/Caracas'],
})

export const UserSchema = Type.Object(
  {
    id: Id,
    username: Type.String(),
    email: Nullable(Type.String()),
    full_name: Nullable(Type.String()),
    role: ref(RoleSchema),
    is_active: Type.Boolean(),
    locale: ref(LocaleSchema),
    time_zone: Nullable(
      Type.String({
        description:
          'The IANA time zone where the user’s day starts (what is due today); null: the server’s DEFAULT_TIME_ZONE',
      }),
    ),
    created_at: DateTime,
    updated_at: DateTime,
    last_login_at: NullableDateTime,
  },
  { $id: 'User', additionalProperties: false },
)

export const UserCreateSchema = Type.Object(
  {
    username: Username,
    password: Password,
    role: ref(RoleSchema),
    email: Type.Optional(Nullable(Email)),
    full_name: Type.Optional(Nullable(FullName)),
    is_active: Type.Optional(Type.Boolean({ default: true })),
    locale: Type.Optional(ref(LocaleSchema)),
    time_zone: Type.Optional(Nullable(TimeZone)),
  },
  {
    $id: 'UserCreate',
    additionalProperties: false,
    examples: [{ username: 'maria', password: 'a-long-secret', role: 'sales', full_name: 'María Gómez' }],
  },
)

export const UserUpdateSchema = Type.Object(
  {
    username: Type.Optional(Username),
    password: Type.Optional(Password),
    role: Type.Optional(ref(RoleSchema)),
    email: Type.Optional(Nullable(Email)),
    full_name: Type.Optional(Nullable(FullName)),
    is_active: Type.Optional(Type.Boolean()),
    locale: Type.Optional(ref(LocaleSchema)),
    time_zone: Type.Optional(Nullable(TimeZone)),
  },
  { $id: 'UserUpdate', additionalProperties: false, examples: [{ role: 'management' }] },
)

/** What every user may change of their own: how they are named, their language and their clock. */
export const ProfileUpdateSchema = Type.Object(
  {
    full_name: Type.Optional(Nullable(FullName)),
    locale: Type.Optional(ref(LocaleSchema)),
    time_zone: Type.Optional(Nullable(TimeZone)),
  },
  {
    $id: 'ProfileUpdate',
    additionalProperties: false,
    examples: [{ locale: 'en', time_zone: 'Europe/Madrid' }],
  },
)

export const USER_SORTS = ['id', 'username', 'created_at', 'last_login_at'] as const

export const UserListQuery = Type.Object(
  {
    role: Type.Optional(ref(RoleSchema)),
    is_active: Type.Optional(Type.Boolean()),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Part of the username, name or email' })),
    ...pageQuery(USER_SORTS, 'id'),
  },
  { additionalProperties: false },
)

export const UserPageSchema = Page(ref(UserSchema), 'UserPage')

export const userSchemas = [
  RoleSchema,
  LocaleSchema,
  UserSchema,
  UserCreateSchema,
  UserUpdateSchema,
  ProfileUpdateSchema,
  UserPageSchema,
]
