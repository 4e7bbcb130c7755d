// The routes, registered after every plugin they use: /predict (and V2 infer) behind the bearer check when
// MHE_API_KEYS is set, the probes and /model (and the V2 metadata and health) always open, /metrics behind the check too with MHE_METRICS_AUTH.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import predictRoutes from './predict.js'
import healthRoutes from './health.js'
import modelRoutes from './model.js'
import metricsRoutes from './metrics.js'
import v2Routes from './v2.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const auth = app.bearerAuth
  await app.register(async (scope) => {
    if (auth) scope.addHook('onRequest', auth)
    await scope.register(predictRoutes)
  })
  await app.register(healthRoutes)
  // The Open Inference Protocol: infer behind the bearer check as /predict, metadata and health open (v2.ts).
  await app.register(v2Routes, { prefix: '/v2' })
  await app.register(modelRoutes)
  await app.register(async (scope) => {
    if (auth && app.config.metricsAuth) scope.addHook('onRequest', auth)
    await scope.register(metricsRoutes)
  })
}

export default routes
