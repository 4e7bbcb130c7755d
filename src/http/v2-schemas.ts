// TypeBox schemas of the Open Inference Protocol (KServe V2) routes: they validate the JSON part of an inference
// request, type the handlers and describe the routes in the OpenAPI document.

import { Type, type Static } from 'typebox'

/** Every V2 error: `{"error": "..."}` (the protocol's error object), with the same message /predict gives. */
export const V2Error = Type.Object(
  { error: Type.String({ description: 'what was expected and what arrived' }) },
  { title: 'V2Error', description: 'Open Inference Protocol error object' },
)

export const V2ServerMetadata = Type.Object(
  {
    name: Type.String(),
    version: Type.String(),
    extensions: Type.Array(Type.String(), { description: 'classification, binary_tensor_data' }),
  },
  { title: 'V2ServerMetadata' },
)

export const V2Live = Type.Object({ live: Type.Boolean() }, { title: 'V2Live' })
export const V2Ready = Type.Object({ ready: Type.Boolean() }, { title: 'V2Ready' })
export const V2ModelReady = Type.Object({ name: Type.String(), ready: Type.Boolean() }, { title: 'V2ModelReady' })

const TensorMetadata = Type.Object(
  {
    name: Type.String(),
    datatype: Type.String({ description: 'FP32, INT64 or BYTES' }),
    shape: Type.Array(Type.Integer(), { description: '-1 = any size' }),
  },
  { title: 'V2TensorMetadata' },
)

export const V2ModelMetadata = Type.Object(
  {
    name: Type.String(),
    versions: Type.Array(Type.String()),
    platform: Type.String(),
    inputs: Type.Array(TensorMetadata),
    outputs: Type.Array(TensorMetadata),
  },
  { title: 'V2ModelMetadata' },
)

export const V2ModelParams = Type.Object({ name: Type.String(), version: Type.Optional(Type.String()) })

const Parameters = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]))

const RequestInput = Type.Object(
  {
    name: Type.String({ description: 'features' }),
    shape: Type.Array(Type.Integer({ minimum: 0 }), { description: '[n, featureDim]' }),
    datatype: Type.String({ description: 'FP32' }),
    parameters: Type.Optional(
      Type.Object(
        { binary_data_size: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of this tensor after the JSON (binary tensor extension)' })) },
        { additionalProperties: false },
      ),
    ),
    data: Type.Optional(Type.Array(Type.Unknown(), { description: 'row-major values, flat or nested' })),
  },
  { additionalProperties: false },
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
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export const V2InferRequest = Type.Object(
  {
    id: Type.Optional(Type.String({ description: 'echoed in the answer' })),
    parameters: Type.Optional(
      Type.Object(
        {
          top_k: Type.Optional(Type.Integer({ minimum: 1, description: 'k of label_ids, scores and labels (default 1)' })),
          binary_data_output: Type.Optional(Type.Boolean({ description: 'answer every output as binary data unless it says otherwise' })),
        },
        { additionalProperties: false },
      ),
    ),
    inputs: Type.Array(RequestInput, { description: 'one input, "features"' }),
    outputs: Type.Optional(Type.Array(RequestOutput, { description: 'default: label_ids, scores, labels, head_ids' })),
  },
  {
    title: 'V2InferRequest',
    additionalProperties: false,
    description:
      'JSON, or (binary tensor extension) JSON followed by the tensors\' bytes, with Inference-Header-Content-Length giving ' +
      'the JSON length. Content-Type application/json, application/octet-stream or none.',
  },
)

const ResponseOutput = Type.Object({
  name: Type.String(),
  datatype: Type.String(),
  shape: Type.Array(Type.Integer()),
  parameters: Type.Optional(Parameters),
  data: Type.Optional(Type.Array(Type.Unknown(), { description: 'row-major; absent when sent as binary data' })),
})

export const V2InferResponse = Type.Object(
  {
    model_name: Type.String(),
    model_version: Type.String(),
    id: Type.Optional(Type.String()),
    outputs: Type.Array(ResponseOutput),
  },
  { title: 'V2InferResponse', description: 'JSON, or JSON followed by binary outputs (Inference-Header-Content-Length)' },
)

export type V2InferRequest = Static<typeof V2InferRequest>
export type V2InferResponse = Static<typeof V2InferResponse>
export type V2ModelMetadata = Static<typeof V2ModelMetadata>
