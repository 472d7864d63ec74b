import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'

const Index = Type.Object(
  {
    name: Type.String(),
    version: Type.String(),
    docs: Type.String({ description: 'Swagger UI' }),
    openapi: Type.String({ description: 'The OpenAPI document' }),
    dashboard: Type.String({ description: 'The sales dashboard (a web page)' }),
    health: Type.String(),
  },
  { additionalProperties: false },
)

/** `GET /`: where a person or a client that opened the bare address finds the rest. */
export const indexRoutes: FastifyPluginAsyncTypebox<{ version: string }> = async (app, { version }) => {
  app.get(
    '/',
    {
      schema: {
        operationId: 'getApiIndex',
        tags: ['operations'],
        summary: 'Links to the documentation, the OpenAPI document and the dashboard',
        security: [],
        response: { 200: Index },
      },
    },
    async () => ({
      name: 'Mini CRM API',
      version,
      docs: '/docs',
      openapi: '/openapi.json',
      dashboard: '/dashboard',
      health: '/health',
    }),
  )
}
