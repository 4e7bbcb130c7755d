// TypeBox schemas of the HTTP interface: written once, they validate requests, type the handlers and make the
// OpenAPI document (openapi/openapi.json).

import { Type, type Static } from 'typebox'
import { topKField, TOP_K_DEFAULT } from './top-k.js'

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer({ description: 'HTTP status' }),
    code: Type.String({ description: 'stable error code, see the README', examples: ['MHE_BAD_INSTANCE'] }),
    error: Type.String({ description: 'HTTP status text' }),
    message: Type.String({ description: 'what was expected and what arrived' }),
  },
  { title: 'ErrorBody', description: 'Error (Fastify error shape with a stable code)' },
)

export const TopKQuery = Type.Object({
  top_k: topKField('labels per instance (binary bodies; a JSON body may say it too)'),
})

export const PredictJsonBody = Type.Object(
  {
    instances: Type.Array(Type.Array(Type.Number(), { description: 'one feature vector of featureDim values' }), {
      description: 'feature vectors, one per instance',
    }),
    top_k: topKField(`labels per instance, best first (default ${TOP_K_DEFAULT})`),
  },
  { title: 'PredictRequest', additionalProperties: false },
)

export const BinaryBody = Type.Unsafe<Buffer>({
  type: 'string',
  format: 'binary',
  description: 'raw little-endian float32, n x featureDim values (n inferred from the length)',
})

const Scored = {
  label_id: Type.Integer({ description: 'global label id, 0 <= id < numLabels' }),
  label: Type.String({ description: 'label name from labels.txt' }),
  score: Type.Number({ description: "product of the heads' softmax probabilities" }),
}

export const Prediction = Type.Object(
  {
    ...Scored,
    head_ids: Type.Array(Type.Integer(), { description: 'local id per head, head 1 most significant' }),
    top_k: Type.Array(Type.Object(Scored), { description: 'best first; the first entry is the prediction itself' }),
  },
  { title: 'Prediction' },
)

export const PredictResponse = Type.Object(
  {
    model: Type.String(),
    version: Type.String(),
    predictions: Type.Array(Prediction, { description: 'one per instance, in order' }),
  },
  { title: 'PredictResponse' },
)

export const ModelInfo = Type.Object(
  {
    name: Type.String(),
    version: Type.String(),
    description: Type.Optional(Type.String()),
    featureDim: Type.Integer(),
    heads: Type.Array(Type.Integer()),
    numLabels: Type.Integer(),
    outputs: Type.String(),
    features: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "featurizer settings from mhe.json" })),
    backend: Type.String({ description: 'tfjs backend in use' }),
    batching: Type.Object({
      maxBatch: Type.Integer(),
      maxDelayMs: Type.Integer(),
      maxQueue: Type.Integer(),
      maxInstances: Type.Integer(),
      maxTopK: Type.Integer(),
      requestTimeoutMs: Type.Integer(),
    }),
  },
  { title: 'ModelInfo' },
)

export const Health = Type.Object(
  { status: Type.String({ description: 'ok / ready, or starting / draining / closing / failed' }) },
  { title: 'Health' },
)

export type TopKQuery = Static<typeof TopKQuery>
export type PredictJsonBody = Static<typeof PredictJsonBody>
export type PredictResponse = Static<typeof PredictResponse>
export type ModelInfo = Static<typeof ModelInfo>
