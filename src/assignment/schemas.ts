import { Type } from '@sinclair/typebox'
import { ASSIGNMENT_MODES } from '../db/enums.js'
import { Id, StringEnum } from '../http/schemas.js'

export const MAX_ROTATION_USERS = 100

export const AssignmentRulesSchema = Type.Object(
  {
    mode: StringEnum(ASSIGNMENT_MODES, {
      description: 'none: inbound leads arrive unassigned (admins and management are mailed); round_robin: in turn',
    }),
    users: Type.Array(Id, {
      maxItems: MAX_ROTATION_USERS,
      uniqueItems: true,
      description: 'The user ids that take turns, in order; inactive users are skipped',
    }),
  },
  { $id: 'AssignmentRules', additionalProperties: false, examples: [{ mode: 'round_robin', users: [2, 3, 4] }] },
)

export const assignmentSchemas = [AssignmentRulesSchema]
