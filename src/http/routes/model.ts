// GET /model: what the default model serves, on which backend, with which batching settings; GET /models: every
// model, its versions and their states; GET /models/{name}[?version=]: one model's metadata. 503 MHE_NOT_READY while
// the models are still loading.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, jsonResponse, ModelInfo, ModelList, ModelParams, ModelVersionQuery } from '../schemas.js'
import { OPEN } from '../openapi.js'
import { errors } from '../../errors.js'
import type { Config } from '../../config.js'
import type { ServedVersion } from '../../serving/models.js'

function modelInfo({ model, version, loaded: { manifest: m, backend, batching } }: ServedVersion, config: Config): ModelInfo {
  return {
    name: model,
    version: m.version,
    model_version: String(version),
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
  // Built once per served version: GET /model is polled by dashboards and clients.
  const infos = new WeakMap<ServedVersion, ModelInfo>()

  const describe = (name: string | undefined, version?: number): ModelInfo => {
    if (service.state === 'starting') throw errors.notReady()
    const served = service.models.acquire(name, version)
    served.release() // metadata only: nothing to wait for
    let info = infos.get(served)
    if (info === undefined) infos.set(served, (info = modelInfo(served, config)))
    return info
  }

  app.get(
    '/model',
    {
      schema: {
        operationId: 'getModel',
        summary: 'Model metadata',
        description:
          'What the default model serves (name, version, featureDim, heads, numLabels, featurizer settings), the backend it runs on and the limits in force.',
        tags: ['model'],
        security: OPEN,
        response: { 200: jsonResponse('The model and its settings.', ModelInfo), ...errorResponses(404, 500, 503) },
      },
    },
    async () => describe(undefined),
  )

  app.get(
    '/models',
    {
      schema: {
        operationId: 'listModels',
        summary: 'Models and versions',
        description: 'Every model served, which version unpinned requests go to, and the state of each version (loading, ready, unloading, failed with the reason).',
        tags: ['model'],
        security: OPEN,
        response: { 200: jsonResponse('The models and their versions.', ModelList), ...errorResponses(500) },
      },
    },
    async () => ({
      models: service.models.status().map((m) => ({
        name: m.name,
        default: m.isDefault,
        serving: m.serving === undefined ? undefined : String(m.serving),
        unloaded: m.unloaded,
        versions: m.versions.map((v) => ({ version: String(v.version), state: v.state, reason: v.reason, bundle_version: v.bundleVersion })),
      })),
    }),
  )

  app.get(
    '/models/:name',
    {
      schema: {
        operationId: 'getModelByName',
        summary: 'Metadata of one model',
        description: 'As `getModel`, for the model `name`: its newest ready version, or the one `version` pins.',
        tags: ['model'],
        security: OPEN,
        params: ModelParams,
        querystring: ModelVersionQuery,
        response: { 200: jsonResponse('The model version and its settings.', ModelInfo), ...errorResponses(400, 404, 500, 503) },
      },
    },
    async (request) => describe(request.params.name, request.query.version),
  )
}

export default modelRoutes
