// The OpenAPI document, built from the routes' schemas (openapi/openapi.json is its copy), and Swagger UI on /docs.
// Registered before the routes, so that it sees them.

import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { swaggerOptions } from '../openapi.js'

export default fp(
  async function openapi(app) {
    await app.register(swagger, swaggerOptions)
    await app.register(swaggerUi, { routePrefix: '/docs' })
  },
  { name: 'mhe-swagger' },
)
