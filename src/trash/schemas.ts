import { Type } from '@sinclair/typebox'
import { ClientSchema } from '../clients/schemas.js'
import { DateTime, Id, Nullable, Page, pageLimits, ref, StringEnum } from '../http/schemas.js'
import { LeadSchema } from '../leads/schemas.js'

export const TRASH_TYPES = ['clients', 'leads'] as const
export type TrashType = (typeof TRASH_TYPES)[number]

const TrashTypeSchema = StringEnum(TRASH_TYPES, { description: 'Which trash: clients or leads' })

const trashMark = {
  deleted_at: DateTime,
  deleted_by: Nullable(Type.Integer({ description: 'The id of the user who moved it to the trash' })),
}

export const TrashedClientSchema = Type.Object(
  { ...ClientSchema.properties, ...trashMark },
  { $id: 'TrashedClient', additionalProperties: false },
)

export const TrashedLeadSchema = Type.Object(
  { ...LeadSchema.properties, ...trashMark },
  { $id: 'TrashedLead', additionalProperties: false },
)

export const TrashPageSchema = Page(Type.Union([ref(TrashedClientSchema), ref(TrashedLeadSchema)]), 'TrashPage')

export const TrashListQuery = Type.Object({ type: TrashTypeSchema, ...pageLimits() }, { additionalProperties: false })

export const TrashItemParams = Type.Object({ type: TrashTypeSchema, id: Id }, { additionalProperties: false })

export const trashSchemas = [TrashedClientSchema, TrashedLeadSchema, TrashPageSchema]
