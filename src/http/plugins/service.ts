// The prediction service on the app (app.mhe): its gauges, `Connection: close` on answers while closing, and the
// model freed when the app closes. The model itself loads when app.mhe.start() is called (src/http/app.ts).

import fp from 'fastify-plugin'
import { Service } from '../../serving/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    mhe: Service
  }
}

export default fp(
  async function service(app) {
    const s = new Service(app.config, app.log, app.metrics.hooks)
    app.metrics.bindService(s)
    app.decorate('mhe', s)
    app.addHook('onSend', (_request, reply, _payload, done) => {
      // Closing: answer, then close the connection, so the client moves to another replica instead of reusing it.
      if (s.state === 'closing') reply.header('connection', 'close')
      done()
    })
    // After the requests in flight are answered: drain the batcher, free the model.
    app.addHook('onClose', async () => s.close())
  },
  { name: 'mhe-service', dependencies: ['mhe-metrics'], decorators: { fastify: ['config'] } },
)
