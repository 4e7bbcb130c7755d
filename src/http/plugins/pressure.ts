// Event-loop lag guard (@fastify/under-pressure): past MHE_MAX_EVENT_LOOP_DELAY_MS, requests get 503 MHE_OVERLOADED
// at once instead of queueing more work. A route may opt out with its own `config.pressureHandler`.

import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { errors } from '../../errors.js'

export default fp(
  async function pressure(app) {
    if (app.config.maxEventLoopDelayMs <= 0) return
    await app.register(underPressure, {
      maxEventLoopDelay: app.config.maxEventLoopDelayMs,
      // A rejection goes to the error handler, like every other refusal.
      pressureHandler: async (_request, _reply, type, value) => {
        throw errors.overloaded(`${type} ${Math.round(Number(value))}`)
      },
    })
  },
  { name: 'mhe-pressure', dependencies: ['mhe-errors'], decorators: { fastify: ['config'] } },
)
