// The Prometheus registry on the app (app.metrics), and every answer counted and timed by route, method and status.

import fp from 'fastify-plugin'
import { Metrics } from '../../serving/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
  interface FastifyRequest {
    /** The model version that answered (or was picked, then refused), set by the prediction routes. */
    mheServed: { model: string; version: number } | undefined
  }
}

export default fp(
  async function metrics(app) {
    const m = new Metrics()
    app.decorate('metrics', m)
    app.decorateRequest('mheServed', undefined)
    // Callback-style hooks here and below: an async hook costs a promise per request, and these run on every one.
    app.addHook('onResponse', (request, reply, done) => {
      m.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000)
      const served = request.mheServed
      if (served !== undefined) m.observeModelRequest(served.model, served.version, reply.statusCode, reply.elapsedTime / 1000)
      done()
    })
  },
  { name: 'mhe-metrics' },
)
