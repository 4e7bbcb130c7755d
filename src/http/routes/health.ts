// Liveness (the process answers and can still predict) and readiness (model loaded, warmed up, not draining).

import type { FastifyInstance } from 'fastify'
import { Health, jsonResponse } from '../schemas.js'
import { OPEN } from '../openapi.js'
import type { Service } from '../../serving/service.js'

export default async function healthRoutes(app: FastifyInstance, opts: { service: Service }): Promise<void> {
  app.get(
    '/health/live',
    {
      schema: {
        operationId: 'getLiveness',
        summary: 'Liveness probe',
        description: 'Answers 200 while the process can still predict; 503 `failed` once its engine thread has died.',
        tags: ['health'],
        security: OPEN,
        response: { 200: jsonResponse('Alive: `ok`.', Health), 503: jsonResponse('The engine thread died: `failed`; replace the process.', Health) },
      },
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
    {
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness probe',
        description: 'Answers 200 once the model is loaded and warmed up; 503 (with Retry-After) while starting, draining or failed.',
        tags: ['health'],
        security: OPEN,
        response: {
          200: jsonResponse('Ready: `ready`.', Health),
          503: { ...jsonResponse('Not ready: `starting`, `draining`, `closing` or `failed`.', Health), headers: { 'Retry-After': { type: 'integer', description: 'seconds to wait before asking again' } } },
        },
      },
    },
    async (_request, reply) => {
      const state = opts.service.state
      if (state !== 'ready') reply.code(503).header('Retry-After', '1')
      return { status: state }
    },
  )
}
