// GET /metrics: Prometheus text exposition of the service's registry.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../schemas.js'
import { OPTIONAL_BEARER } from '../openapi.js'

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { registry } = app.metrics
  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description: 'Prometheus text exposition format 0.0.4. Open unless the server sets MHE_METRICS_AUTH=true.',
        tags: ['health'],
        security: OPTIONAL_BEARER,
        response: {
          200: { description: 'The metrics, as Prometheus text.', content: { 'text/plain': { schema: { type: 'string' } } } },
          ...errorResponses(401, 500, 503),
        },
      },
    },
    async (_request, reply) => {
      reply.type(registry.contentType)
      return registry.metrics()
    },
  )
}

export default metricsRoutes
