// TypeBox schemas of the Open Inference Protocol (KServe V2) routes: they validate the JSON part of an inference
// request, type the handlers and describe the routes in the OpenAPI document (each `$id` a named schema there).

import { Type, type Static } from 'typebox'
import { topKField } from './top-k.js'

/** Every V2 error: `{"error": "..."}` (the protocol's error object), with the same message /predict gives. */
export const V2Error = Type.Object(
  { error: Type.String({ description: 'what was expected and what arrived (the message /predict gives)' }) },
  { $id: 'V2Error', description: 'Open Inference Protocol error object.' },
)

export const V2ServerMetadata = Type.Object(
  {
    name: Type.String({ description: 'server name: mhe-serve' }),
    version: Type.String({ description: 'server version' }),
    extensions: Type.Array(Type.String(), { description: 'protocol extensions supported: classification, binary_tensor_data' }),
  },
  { $id: 'V2ServerMetadata', description: 'Open Inference Protocol server metadata.' },
)

export const V2Live = Type.Object(
  { live: Type.Boolean({ description: 'false once the engine thread died (replace the process)' }) },
  { $id: 'V2Live', description: 'Open Inference Protocol server liveness.' },
)
export const V2Ready = Type.Object(
  { ready: Type.Boolean({ description: 'true once the model is loaded and warmed up, false while starting, draining or failed' }) },
  { $id: 'V2Ready', description: 'Open Inference Protocol server readiness.' },
)
export const V2ModelReady = Type.Object(
  {
    name: Type.String({ description: 'model name, as asked' }),
    ready: Type.Boolean({ description: 'true once the model is loaded and warmed up, false while starting, draining or failed' }),
  },
  { $id: 'V2ModelReady', description: 'Open Inference Protocol model readiness.' },
)

const TensorMetadata = Type.Object(
  {
    name: Type.String({ description: 'tensor name' }),
    datatype: Type.String({ description: 'FP32, INT64 or BYTES' }),
    shape: Type.Array(Type.Integer(), { description: '-1 = any size' }),
  },
  { $id: 'V2TensorMetadata', description: 'A tensor the model takes or gives.' },
)

export const V2ModelMetadata = Type.Object(
  {
    name: Type.String({ description: 'model name (mhe.json name)' }),
    versions: Type.Array(Type.String(), { description: 'the version served (mhe.json version)' }),
    platform: Type.String({ description: 'tensorflowjs' }),
    inputs: Type.Array(TensorMetadata, { description: 'one input, features FP32 [-1, featureDim]' }),
    outputs: Type.Array(TensorMetadata, { description: 'label_ids, scores, labels, head_ids, probabilities' }),
  },
  { $id: 'V2ModelMetadata', description: 'Open Inference Protocol model metadata.' },
)

const modelName = Type.String({ description: 'model name (GET /v2/models/{name} metadata; mhe.json name)' })
export const V2ModelParams = Type.Object({ name: modelName })
export const V2ModelVersionParams = Type.Object({
  name: modelName,
  version: Type.String({ description: 'model version (mhe.json version)' }),
})

const Parameters = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
  description: 'tensor parameters (binary_data_size when the tensor is binary data after the JSON)',
})

const RequestInput = Type.Object(
  {
    name: Type.String({ description: 'features' }),
    shape: Type.Array(Type.Integer({ minimum: 0 }), { description: '[n, featureDim]' }),
    datatype: Type.String({ description: 'FP32' }),
    parameters: Type.Optional(
      Type.Object(
        { binary_data_size: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of this tensor after the JSON (binary tensor extension)' })) },
        { additionalProperties: false, description: 'input parameters' },
      ),
    ),
    data: Type.Optional(Type.Array(Type.Unknown(), { description: 'row-major values, flat or nested' })),
  },
  { $id: 'V2InferInput', additionalProperties: false, description: 'An input tensor: data as JSON or as binary data.' },
)

const RequestOutput = Type.Object(
  {
    name: Type.String({ description: 'label_ids, scores, labels, head_ids or probabilities' }),
    parameters: Type.Optional(
      Type.Object(
        {
          binary_data: Type.Optional(Type.Boolean({ description: 'answer this output as binary data after the JSON' })),
          classification: Type.Optional(Type.Integer({ description: 'on probabilities: the top k as "score:label_id:label" (BYTES [n, k])' })),
        },
        { additionalProperties: false, description: 'output parameters' },
      ),
    ),
  },
  { $id: 'V2InferRequestedOutput', additionalProperties: false, description: 'An output the request asks for.' },
)

export const V2InferRequest = Type.Object(
  {
    id: Type.Optional(Type.String({ description: 'echoed in the answer' })),
    parameters: Type.Optional(
      Type.Object(
        {
          top_k: topKField('k of label_ids, scores and labels (default 1)'),
          binary_data_output: Type.Optional(Type.Boolean({ description: 'answer every output as binary data unless it says otherwise' })),
        },
        { additionalProperties: false, description: 'request parameters' },
      ),
    ),
    inputs: Type.Array(RequestInput, { description: 'one input, "features"' }),
    outputs: Type.Optional(Type.Array(RequestOutput, { description: 'default: label_ids, scores, labels, head_ids' })),
  },
  {
    $id: 'V2InferRequest',
    additionalProperties: false,
    description:
      'JSON, or (binary tensor extension) JSON followed by the tensors\' bytes, with Inference-Header-Content-Length giving ' +
      'the JSON length. Content-Type application/json, application/octet-stream or none.',
  },
)

const ResponseOutput = Type.Object(
  {
    name: Type.String({ description: 'output name' }),
    datatype: Type.String({ description: 'FP32, INT64 or BYTES' }),
    shape: Type.Array(Type.Integer(), { description: 'row-major shape' }),
    parameters: Type.Optional(Parameters),
    data: Type.Optional(Type.Array(Type.Unknown(), { description: 'row-major, flat; absent when sent as binary data' })),
  },
  { $id: 'V2InferOutput', description: 'An output tensor: data as JSON or as binary data.' },
)

export const V2InferResponse = Type.Object(
  {
    model_name: Type.String({ description: 'model name' }),
    model_version: Type.String({ description: 'model version' }),
    id: Type.Optional(Type.String({ description: "the request's id" })),
    outputs: Type.Array(ResponseOutput, { description: 'the outputs asked for, in order' }),
  },
  { $id: 'V2InferResponse', description: 'JSON, or JSON followed by binary outputs (Inference-Header-Content-Length).' },
)

/** The V2 schemas named in the OpenAPI document (components.schemas), by their `$id`. */
export const V2_NAMED_SCHEMAS = [
  V2Error,
  V2ServerMetadata,
  V2Live,
  V2Ready,
  V2ModelReady,
  TensorMetadata,
  V2ModelMetadata,
  RequestInput,
  RequestOutput,
  V2InferRequest,
  ResponseOutput,
  V2InferResponse,
]

export type V2InferRequest = Static<typeof V2InferRequest>
export type V2InferResponse = Static<typeof V2InferResponse>
export type V2ModelMetadata = Static<typeof V2ModelMetadata>
