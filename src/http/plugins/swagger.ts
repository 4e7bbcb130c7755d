// The OpenAPI document, built from the routes' schemas (openapi/openapi.json is its copy), and Swagger UI on /docs.
// Registered before the routes, so that it sees them.

import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export const OPENAPI_INFO = {
  title: 'MHE prediction service',
  description:
    'Serves Multi-Head Encoding (MHE) extreme-label classifiers: feature vectors in, label ids, names and scores out.',
  version: '0.1.0',
}

export default fp(
  async function openapi(app) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: OPENAPI_INFO,
        tags: [
          { name: 'predict', description: 'Predictions' },
          { name: 'model', description: 'What is served' },
          { name: 'health', description: 'Probes' },
        ],
        components: app.config.apiKeys.length > 0 ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {},
      },
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
  },
  { name: 'mhe-swagger', decorators: { fastify: ['config'] } },
)
