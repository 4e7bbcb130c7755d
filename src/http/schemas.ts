// TypeBox schemas of the HTTP interface: written once, they validate requests, type the handlers and make the
// OpenAPI document (openapi/openapi.json). A schema with an `$id` becomes a named schema in the document's
// components.schemas (src/http/openapi.ts names them by `$id`), so every client generator gets the same type names.

import { Type, type Static } from 'typebox'
import { topKField, TOP_K_DEFAULT } from './top-k.js'
import { ERROR_CODES, type ErrorCode } from '../errors.js'

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer({ description: 'HTTP status of the answer', minimum: 400, maximum: 599 }),
    code: Type.Enum(Object.keys(ERROR_CODES) as ErrorCode[], {
      type: 'string',
      description: 'stable error code (README "Errors" lists what each means)',
    }),
    error: Type.String({ description: 'HTTP status text' }),
    message: Type.String({ description: 'what was expected and what arrived' }),
  },
  { $id: 'ErrorBody', description: "Every error answer: Fastify's error shape with a stable `code`." },
)

export const TopKQuery = Type.Object(
  { top_k: topKField(`labels per instance, best first (default ${TOP_K_DEFAULT})`) },
  { additionalProperties: false }, // ?topk=5 is refused, not ignored
)

export const ModelParams = Type.Object({
  name: Type.String({ description: 'model name: a folder of MHE_MODEL_REPOSITORY (or the one bundle\'s mhe.json "name")', minLength: 1, maxLength: 128 }),
})

export const ModelVersionQuery = Type.Object({
  version: Type.Optional(Type.Integer({ description: 'pin this version of the model (default: its newest ready version)', minimum: 1 })),
})

export const ModelPredictQuery = Type.Object({
  top_k: topKField(`labels per instance, best first (default ${TOP_K_DEFAULT})`),
  version: ModelVersionQuery.properties.version,
})

export const PredictJsonBody = Type.Object(
  {
    instances: Type.Array(
      Type.Array(Type.Number(), { description: 'one feature vector: featureDim finite numbers (GET /model says featureDim)' }),
      { description: 'feature vectors, one per instance (at least one)' },
    ),
    top_k: topKField(`labels per instance, best first (default ${TOP_K_DEFAULT})`),
  },
  { $id: 'PredictRequest', description: 'A batch of feature vectors to classify.', additionalProperties: false },
)

export const BinaryBody = Type.Unsafe<Buffer>({
  type: 'string',
  format: 'binary',
  description: 'raw little-endian float32 values, n x featureDim of them (n is inferred from the length)',
})

const scored = {
  label_id: Type.Integer({ description: 'global label id, 0 <= id < numLabels', minimum: 0 }),
  label: Type.String({ description: 'label name (line label_id of the bundle\'s labels.txt)' }),
  score: Type.Number({ description: "product of the heads' softmax probabilities", minimum: 0, maximum: 1 }),
}

export const ScoredLabel = Type.Object(scored, { $id: 'ScoredLabel', description: 'One label with its score.' })

export const Prediction = Type.Object(
  {
    ...scored,
    head_ids: Type.Array(Type.Integer({ minimum: 0 }), { description: 'local id per head, head 1 most significant' }),
    top_k: Type.Array(ScoredLabel, {
      description: 'top_k labels, best first (fewer only when the model has fewer labels); the first is the prediction itself',
    }),
  },
  { $id: 'Prediction', description: 'The best label of one instance, and its top_k labels.' },
)

export const PredictResponse = Type.Object(
  {
    model: Type.String({ description: 'name of the model that answered' }),
    version: Type.String({ description: 'the bundle\'s own version string (mhe.json "version") of the model version that answered' }),
    model_version: Type.String({ description: 'the served version that computed these predictions (the repository\'s version folder; "1" for MHE_MODEL); also the x-mhe-model-version header' }),
    predictions: Type.Array(Prediction, { description: 'one per instance, in order' }),
  },
  { $id: 'PredictResponse', description: 'Predictions for a batch, one per instance, in order.' },
)

export const ModelInfo = Type.Object(
  {
    name: Type.String({ description: 'model name (the repository folder; for MHE_MODEL, mhe.json "name")' }),
    version: Type.String({ description: 'bundle version (mhe.json)' }),
    model_version: Type.String({ description: 'the served version described (the repository\'s version folder; "1" for MHE_MODEL)' }),
    description: Type.Optional(Type.String({ description: 'bundle description (mhe.json)' })),
    featureDim: Type.Integer({ description: 'values per feature vector', minimum: 1 }),
    heads: Type.Array(Type.Integer({ minimum: 1 }), { description: 'head sizes n_1..n_H, head 1 most significant' }),
    numLabels: Type.Integer({ description: 'number of labels C', minimum: 1 }),
    outputs: Type.String({ description: 'what the model outputs: logits or probabilities' }),
    features: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'featurizer settings from mhe.json' })),
    backend: Type.String({ description: 'TensorFlow.js backend in use' }),
    batching: Type.Object(
      {
        maxBatch: Type.Integer({ description: 'most instances in one model call' }),
        maxDelayMs: Type.Integer({ description: 'longest the first queued instance waits for company (ms)' }),
        maxQueue: Type.Integer({ description: 'most instances waiting; past it, 503' }),
        maxInstances: Type.Integer({ description: 'most instances in one request' }),
        maxTopK: Type.Integer({ description: 'largest top_k accepted' }),
        requestTimeoutMs: Type.Integer({ description: 'deadline of a request inside the server (ms)' }),
      },
      { description: 'batching and request limits in force' },
    ),
  },
  { $id: 'ModelInfo', description: 'The model being served, the backend it runs on and the limits in force.' },
)

const VersionStatus = Type.Object(
  {
    version: Type.String({ description: 'version (folder name)' }),
    state: Type.Enum(['loading', 'ready', 'unloading', 'failed'], { type: 'string', description: 'loading, ready (serving), unloading (answering what it holds), failed (see reason)' }),
    reason: Type.Optional(Type.String({ description: 'why it failed to load: the file and the mismatch' })),
    bundle_version: Type.Optional(Type.String({ description: 'the bundle\'s own version string (mhe.json "version"), once loaded' })),
  },
  { $id: 'ModelVersionStatus', description: 'One version of a model and its state.' },
)

export const ModelStatus = Type.Object(
  {
    name: Type.String({ description: 'model name' }),
    default: Type.Boolean({ description: 'whether /predict and /model serve it' }),
    serving: Type.Optional(Type.String({ description: 'the version unpinned requests go to (the newest ready one); absent when none is ready' })),
    unloaded: Type.Boolean({ description: 'unloaded on request (POST /v2/repository/models/{name}/unload)' }),
    versions: Type.Array(VersionStatus, { description: 'its versions, ascending' }),
  },
  { $id: 'ModelStatus', description: 'A model, its versions and their states.' },
)

export const ModelList = Type.Object(
  { models: Type.Array(ModelStatus, { description: 'every model, by name' }) },
  { $id: 'ModelList', description: 'The models served and the state of each version.' },
)

export const Health = Type.Object(
  {
    status: Type.Enum(['ok', 'ready', 'starting', 'draining', 'closing', 'failed'], {
      type: 'string',
      description: 'live: ok or failed; ready: ready, or starting, draining, closing or failed',
    }),
  },
  { $id: 'Health', description: 'A probe answer.' },
)

/** The schemas named in the OpenAPI document (components.schemas), by their `$id`. */
export const NAMED_SCHEMAS = [PredictJsonBody, PredictResponse, Prediction, ScoredLabel, ModelInfo, ModelList, ModelStatus, VersionStatus, Health, ErrorBody]

export type TopKQuery = Static<typeof TopKQuery>
export type PredictJsonBody = Static<typeof PredictJsonBody>
export type PredictResponse = Static<typeof PredictResponse>
export type ModelInfo = Static<typeof ModelInfo>
export type ModelVersionQuery = Static<typeof ModelVersionQuery>
export type ModelList = Static<typeof ModelList>

/** What each error status means, for the document: the `code` in the body says which rule was broken. */
const ERROR_STATUSES = {
  400: 'The body or query is not what the operation expects (shape, instance length, NaN/Infinity, no instances, too many instances, top_k, binary length, malformed JSON).',
  401: 'The server has MHE_API_KEYS and the bearer token is missing or wrong.',
  404: 'No such model or version is served (MHE_MODEL_NOT_FOUND).',
  405: 'The path exists, but not for this method (MHE_METHOD_NOT_ALLOWED, e.g. GET /predict); Allow lists the methods it takes.',
  408: 'The whole request (headers and body) did not arrive within MHE_BODY_TIMEOUT_MS (MHE_REQUEST_TIMEOUT); the connection is closed.',
  413: 'The body is larger than MHE_BODY_LIMIT (MHE_BODY_TOO_LARGE), or its JSON would take more memory to parse than MHE_BODY_LIMIT allows the parser (MHE_JSON_TOO_BIG).',
  415: 'The Content-Type is not one the operation takes.',
  431: 'The request headers are larger than the server takes (MHE_HEADERS_TOO_LARGE); the connection is closed.',
  500: 'A server fault; the details are only in the server log.',
  503: 'Not available now (queue full, overloaded, draining, timed out, model not ready): retry after Retry-After seconds, or on another replica.',
} as const
type ErrorStatus = keyof typeof ERROR_STATUSES

const RESPONSE_HEADERS: Partial<Record<ErrorStatus, Record<string, { type: string; description: string }>>> = {
  401: { 'WWW-Authenticate': { type: 'string', description: 'the scheme to use: Bearer realm="mhe"' } },
  405: { Allow: { type: 'string', description: 'the methods the path takes, e.g. POST' } },
  503: { 'Retry-After': { type: 'integer', description: 'seconds to wait before retrying' } },
}

/** A response with a description of its own: the named schema keeps the description of what it is. */
export const jsonResponse = <T>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } })

interface ErrorResponse extends ReturnType<typeof jsonResponse<typeof ErrorBody>> {
  headers?: Record<string, { type: string; description: string }>
}

/** The error answers of an operation, one per status, each an ErrorBody. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S, ErrorResponse> {
  const out = {} as Record<S, ErrorResponse>
  for (const s of statuses) {
    const headers = RESPONSE_HEADERS[s]
    out[s] = { ...jsonResponse(ERROR_STATUSES[s], ErrorBody), ...(headers && { headers }) }
  }
  return out
}
