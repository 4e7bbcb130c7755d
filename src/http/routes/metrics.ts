// GET /metrics: Prometheus text exposition of the service's registry.

import type { FastifyInstance } from 'fastify'
import type { Metrics } from '../../serving/metrics.js'

export default async function metricsRoutes(app: FastifyInstance, opts: { metrics: Metrics }): Promise<void> {
  const { registry } = opts.metrics
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
