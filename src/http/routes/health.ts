// Liveness (the process answers and can still predict) and readiness (model loaded, warmed up, not draining).

import type { FastifyInstance } from 'fastify'
import { Health } from '../schemas.js'
import type { Service } from '../../serving/service.js'

export default async function healthRoutes(app: FastifyInstance, opts: { service: Service }): Promise<void> {
  app.get(
    '/health/live',
    {
      schema: { summary: 'Liveness probe: 503 once the engine thread has died', tags: ['health'], response: { 200: Health, 503: Health } },
      // A lagging process is still alive: the event-loop guard must not make the orchestrator kill it.
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      if (opts.service.state !== 'failed') return { status: 'ok' }
      reply.code(503)
      return { status: 'failed' }
    },
  )
  app.get(
    '/health/ready',
    { schema: { summary: 'Readiness probe: 503 while starting or draining', tags: ['health'], response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      const state = opts.service.state
      if (state !== 'ready') reply.code(503).header('Retry-After', '1')
      return { status: state }
    },
  )
}
