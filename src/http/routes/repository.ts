// Triton's model-repository extension: POST /v2/repository/index, /v2/repository/models/{name}/load and .../unload.
// They change what the server serves, so they take a token of MHE_ADMIN_KEYS (not MHE_API_KEYS) and exist only when
// it is set. Load and unload answer once done: 200 after the load succeeded and the versions it replaces are
// unloaded, 422 with the reason (the file and the mismatch) when a version failed to load (what served before still
// serves). Errors are the protocol's `{"error": "..."}`. With several worker processes (MHE_WORKERS > 1) each request
// runs on every worker and answers once all have (src/http/repository-control.ts).

import cluster from 'node:cluster'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, ServiceError } from '../../errors.js'
import { ADMIN_BEARER } from '../openapi.js'
import { jsonResponse, ModelParams } from '../schemas.js'
import { V2Error } from '../v2-schemas.js'
import { askAllWorkers, runRelayedActions } from '../../cluster-control.js'
import { combineOutcomes, runControl, type ControlAction, type ControlOutcome, type IndexEntry as Entry, type LoadAnswer as Answer } from '../repository-control.js'

const IndexRequest = Type.Object(
  { ready: Type.Optional(Type.Boolean({ description: 'true: only the model versions ready for inference (default false)' })) },
  { description: 'Optional filter.' },
)

const IndexEntry = Type.Object({
  name: Type.String({ description: 'model name' }),
  version: Type.Optional(Type.String({ description: 'version, where the model has one loaded, loading or failed' })),
  state: Type.Enum(['READY', 'LOADING', 'UNLOADING', 'UNAVAILABLE'], { type: 'string', description: "Triton's model states" }),
  reason: Type.String({ description: 'why it is in this state (empty when ready)' }),
})

const ControlRequest = Type.Object(
  { parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'accepted and ignored (Triton\'s "config" override is not supported)' })) },
  { description: 'Optional, as in Triton.' },
)

const LoadAnswer = Type.Object({
  name: Type.String({ description: 'model name' }),
  loaded: Type.Array(Type.String(), { description: 'versions loaded by this request' }),
  unloaded: Type.Array(Type.String(), { description: 'versions unloaded by this request (their requests were answered first)' }),
  serving: Type.Optional(Type.String({ description: 'the version unpinned requests now go to' })),
})

const errorsOf = (statuses: Record<number, string>) =>
  Object.fromEntries(Object.entries(statuses).map(([s, d]) => [s, jsonResponse(d, V2Error)]))

const UNAUTHORIZED = 'The bearer token is missing or not one of MHE_ADMIN_KEYS.'

const repositoryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { models } = app.mhe
  const local = (action: ControlAction): Promise<ControlOutcome> => runControl(models, action, app.log)
  // In a cluster worker: every worker runs what any one is asked (the primary relays it).
  if (cluster.isWorker) {
    runRelayedActions((action: ControlAction) =>
      local(action).catch((err: unknown): ControlOutcome => {
        app.log.error({ err }, 'repository control request failed')
        const e = errors.internal()
        return { ok: false, code: e.code, message: e.message }
      }),
    )
  }
  const perform = async <T extends Entry[] | Answer>(action: ControlAction): Promise<T> => {
    const outcome = cluster.isWorker ? combineOutcomes(action, await askAllWorkers<ControlAction, ControlOutcome>(action)) : await local(action)
    if (!outcome.ok) throw new ServiceError(outcome.code, outcome.message)
    return outcome.body as T
  }

  // Errors keep their status and headers; the body is the protocol's `{"error": "..."}`.
  app.addHook('preSerialization', async (_request, reply, payload) => {
    if (reply.statusCode >= 400 && typeof payload === 'object' && payload !== null && 'code' in payload && 'message' in payload) {
      return { error: String((payload as { message: unknown }).message) }
    }
    return payload
  })
  // Every body is optional (Triton's clients often send none): none is the empty request.
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined || request.body === null) request.body = {}
    done()
  })
  // Triton's clients may send these bodies without a Content-Type: read any body as JSON.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body).trim()
    if (text === '') return done(null, undefined)
    try {
      done(null, JSON.parse(text))
    } catch (err) {
      done(errors.malformedJson((err as Error).message))
    }
  })

  app.post(
    '/v2/repository/index',
    {
      schema: {
        operationId: 'repositoryIndex',
        summary: 'Repository index',
        description: 'Every model of the repository, loaded or not, with the state of each version (Triton\'s model-repository extension).',
        tags: ['repository'],
        security: ADMIN_BEARER,
        body: IndexRequest,
        response: { 200: jsonResponse('The models and versions.', Type.Array(IndexEntry)), ...errorsOf({ 400: 'The body is not the index request.', 401: UNAUTHORIZED }) },
      },
    },
    (request) => perform<Entry[]>({ op: 'index', ready: request.body?.ready === true }),
  )

  app.post(
    '/v2/repository/models/:name/load',
    {
      schema: {
        operationId: 'repositoryLoad',
        summary: 'Load a model',
        description:
          'Loads the versions the model\'s policy serves that are not loaded yet (each read, checked and warmed up beside what serves), ' +
          'switches new requests to the newest, and unloads the versions the policy no longer serves once their requests are answered. ' +
          'Answers when all that is done; a version that fails to load leaves what serves untouched and answers 422 with the reason.',
        tags: ['repository'],
        security: ADMIN_BEARER,
        params: ModelParams,
        body: ControlRequest,
        response: {
          200: jsonResponse('Loaded.', LoadAnswer),
          ...errorsOf({ 400: 'The body is not a load request.', 401: UNAUTHORIZED, 404: 'No such model in the repository.', 422: 'A version failed to load: the file and the mismatch. What served before still serves.' }),
        },
      },
    },
    (request) => perform<Answer>({ op: 'load', name: request.params.name }),
  )

  app.post(
    '/v2/repository/models/:name/unload',
    {
      schema: {
        operationId: 'repositoryUnload',
        summary: 'Unload a model',
        description: 'Stops sending requests to every version of the model at once and answers once each has answered what it held and is freed.',
        tags: ['repository'],
        security: ADMIN_BEARER,
        params: ModelParams,
        body: ControlRequest,
        response: {
          200: jsonResponse('Unloaded.', LoadAnswer),
          ...errorsOf({ 400: 'The body is not an unload request.', 401: UNAUTHORIZED, 404: 'The model is not loaded.' }),
        },
      },
    },
    (request) => perform<Answer>({ op: 'unload', name: request.params.name }),
  )
}

export default repositoryRoutes
