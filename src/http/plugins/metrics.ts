// The Prometheus registry on the app (app.metrics), and every answer counted and timed by route, method and status.

import fp from 'fastify-plugin'
import { Metrics } from '../../serving/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export default fp(
  async function metrics(app) {
    const m = new Metrics()
    app.decorate('metrics', m)
    // Callback-style hooks here and below: an async hook costs a promise per request, and these run on every one.
    app.addHook('onResponse', (request, reply, done) => {
      m.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000)
      done()
    })
  },
  { name: 'mhe-metrics' },
)
