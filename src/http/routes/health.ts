// Liveness (the process answers and can still predict) and readiness (model loaded, warmed up, not draining).

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Health, jsonResponse } from '../schemas.js'
import { OPEN } from '../openapi.js'
import { RETRY_AFTER_SECONDS } from '../../errors.js'

const RETRY_AFTER = String(RETRY_AFTER_SECONDS)

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { lifecycle } = app.mhe
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
      if (lifecycle.alive) return { status: 'ok' as const }
      reply.code(503)
      return { status: 'failed' as const }
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
      // Like liveness: the guard's error body does not fit this route's 503 (it made the answer a 500). A lagging
      // process stays ready; its /predict answers 503 MHE_OVERLOADED while it lags.
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      if (!lifecycle.ready) reply.code(503).header('Retry-After', RETRY_AFTER)
      return { status: lifecycle.state }
    },
  )
}

export default healthRoutes
