import type { ClientLeads } from '../clients/routes.js'
import { moveLeadsOfClient, restoreLeadsOfClient, trashLeadsOfClient } from './cascades.js'
import { countLeadsOfClient, leadIdsOfClient, leadsOfClient } from './queries.js'
import { ClientDetailSchema } from './schemas.js'

/** A client's leads as the client routes read and move them (app.ts passes this in). */
export const clientLeads: ClientLeads = {
  detailSchema: ClientDetailSchema,
  newest: leadsOfClient,
  dependents: {
    count: countLeadsOfClient,
    ids: leadIdsOfClient,
    trashAll: trashLeadsOfClient,
    restoreTrashedWith: restoreLeadsOfClient,
    moveAll: moveLeadsOfClient,
  },
}
