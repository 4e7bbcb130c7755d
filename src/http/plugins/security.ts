// What every answer carries (security headers, the request id) and the optional bearer-token check
// (app.bearerAuth, set when MHE_API_KEYS is; the routes choose where it applies).

import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { bearerAuth } from '../auth.js'

declare module 'fastify' {
  interface FastifyInstance {
    bearerAuth: ((request: FastifyRequest) => Promise<void>) | undefined
  }
}

/** Sent with every answer; Swagger UI needs inline scripts, so no CSP here (it would go on /docs alone). */
const SECURITY_HEADERS = Object.entries({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
})

export default fp(
  async function security(app) {
    app.addHook('onSend', (request, reply, _payload, done) => {
      reply.header('x-request-id', request.id)
      for (const [name, value] of SECURITY_HEADERS) reply.header(name, value)
      done()
    })
    app.decorate('bearerAuth', bearerAuth(app.config.apiKeys))
  },
  { name: 'mhe-security', decorators: { fastify: ['config'] } },
)
