// GET /model: what is being served, on which backend, with which batching settings.

import type { FastifyInstance } from 'fastify'
import { errorResponses, jsonResponse, ModelInfo } from '../schemas.js'
import { OPEN } from '../openapi.js'
import type { Config } from '../../config.js'
import type { Service } from '../../serving/service.js'

export default async function modelRoutes(app: FastifyInstance, opts: { config: Config; service: Service }): Promise<void> {
  const { config, service } = opts
  const m = service.engine.manifest
  const info = {
    name: m.name,
    version: m.version,
    description: m.description,
    featureDim: m.featureDim,
    heads: m.heads,
    numLabels: m.numLabels,
    outputs: m.outputs,
    features: m.features,
    backend: service.backend.name,
    batching: {
      maxBatch: config.maxBatch,
      maxDelayMs: config.maxDelayMs,
      maxQueue: config.maxQueue,
      maxInstances: config.maxInstances,
      maxTopK: config.maxTopK,
      requestTimeoutMs: config.requestTimeoutMs,
    },
  }
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
    async () => info,
  )
}
