import { type TSchema, Type } from '@sinclair/typebox'
import { ref } from '../http/schemas.js'
import { LeadSchema } from '../leads/schemas.js'
import { TaskSchema } from '../tasks/schemas.js'

/** Items shown in each list of the agenda; `total` counts them all. */
export const AGENDA_ITEMS = 10

const List = (item: TSchema, description: string) =>
  Type.Object(
    {
      items: Type.Array(item, { maxItems: AGENDA_ITEMS, description: `The first ${AGENDA_ITEMS}` }),
      total: Type.Integer({ minimum: 0, description: 'How many match in all' }),
    },
    { additionalProperties: false, description },
  )

export const AgendaSchema = Type.Object(
  {
    overdue_tasks: List(
      ref(TaskSchema),
      'Open tasks assigned to the caller, due before now, soonest first (GET /tasks?assigned_to=me&status=overdue)',
    ),
    tasks_today: List(
      ref(TaskSchema),
      'Open tasks assigned to the caller, due today in their time_zone, soonest first (GET /tasks?assigned_to=me&status=due_today)',
    ),
    awaiting_first_response: List(
      ref(LeadSchema),
      'Open leads assigned to the caller not answered yet, oldest first (GET /leads?assigned_to=me&awaiting_first_response=true)',
    ),
    stale_leads: List(
      ref(LeadSchema),
      'Stale leads assigned to the caller, longest stay first (GET /leads?assigned_to=me&stale=true)',
    ),
  },
  { $id: 'Agenda', additionalProperties: false },
)

export const agendaSchemas = [AgendaSchema]
