// GET /model: what is being served, on which backend, with which batching settings; 503 MHE_NOT_READY while the
// model is still loading.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, jsonResponse, ModelInfo } from '../schemas.js'
import { OPEN } from '../openapi.js'
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
    {
      schema: {
        operationId: 'getModel',
        summary: 'Model metadata',
        description: 'What is served (name, version, featureDim, heads, numLabels, featurizer settings), the backend it runs on and the limits in force.',
        tags: ['model'],
        security: OPEN,
        response: { 200: jsonResponse('The model and its settings.', ModelInfo), ...errorResponses(500, 503) },
      },
    },
    async () => {
      const loaded = service.loaded
      if (loaded === undefined) throw errors.notReady()
      info ??= modelInfo(loaded, config)
      return info
    },
  )
}

export default modelRoutes
