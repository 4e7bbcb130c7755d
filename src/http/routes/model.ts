// GET /model: what is being served, on which backend, with which batching settings.

import type { FastifyInstance } from 'fastify'
import { ModelInfo } from '../schemas.js'
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
      ...service.batching,
      maxQueue: config.maxQueue,
      maxInstances: config.maxInstances,
      maxTopK: config.maxTopK,
      requestTimeoutMs: config.requestTimeoutMs,
    },
  }
  app.get('/model', { schema: { summary: 'Model metadata', tags: ['model'], response: { 200: ModelInfo } } }, async () => info)
}
