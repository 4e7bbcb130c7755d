// Liveness (the process answers and can still predict) and readiness (model loaded, warmed up, not draining).

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Health } from '../schemas.js'
import { RETRY_AFTER_SECONDS } from '../../errors.js'

const RETRY_AFTER = String(RETRY_AFTER_SECONDS)

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { lifecycle } = app.mhe
  app.get(
    '/health/live',
    {
      schema: { summary: 'Liveness probe: 503 once the engine thread has died', tags: ['health'], response: { 200: Health, 503: Health } },
      // A lagging process is still alive: the event-loop guard must not make the orchestrator kill it.
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      if (lifecycle.alive) return { status: 'ok' }
      reply.code(503)
      return { status: 'failed' }
    },
  )
  app.get(
    '/health/ready',
    { schema: { summary: 'Readiness probe: 503 while starting or draining', tags: ['health'], response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      if (!lifecycle.ready) reply.code(503).header('Retry-After', RETRY_AFTER)
      return { status: lifecycle.state }
    },
  )
}

export default healthRoutes
