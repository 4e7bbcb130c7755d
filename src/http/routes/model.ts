// GET /model: what is being served, on which backend, with which batching settings; 503 MHE_NOT_READY while the
// model is still loading.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorBody, ModelInfo } from '../schemas.js'
import { errors } from '../../errors.js'
import type { Config } from '../../config.js'
import type { Loaded } from '../../serving/service.js'

function modelInfo({ manifest: m, backend, batching }: Loaded, config: Config): ModelInfo {
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    featureDim: m.featureDim,
    heads: m.heads,
    numLabels: m.numLabels,
    outputs: m.outputs,
    features: m.features,
    backend: backend.name,
    batching: {
      ...batching,
      maxQueue: config.maxQueue,
      maxInstances: config.maxInstances,
      maxTopK: config.maxTopK,
      requestTimeoutMs: config.requestTimeoutMs,
    },
  }
}

const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, mhe: service } = app
  let info: ModelInfo | undefined
  app.get(
    '/model',
    { schema: { summary: 'Model metadata', tags: ['model'], response: { 200: ModelInfo, 503: ErrorBody } } },
    async () => {
      const loaded = service.loaded
      if (loaded === undefined) throw errors.notReady()
      info ??= modelInfo(loaded, config)
      return info
    },
  )
}

export default modelRoutes
