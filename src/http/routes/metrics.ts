// GET /metrics: Prometheus text exposition of the service's registry.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { registry } = app.metrics
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['health'],
        response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4' } },
      },
    },
    async (_request, reply) => {
      reply.type(registry.contentType)
      return registry.metrics()
    },
  )
}

export default metricsRoutes
