// The Open Inference Protocol (KServe V2 REST, as Triton, KServe and MLServer speak it) beside /predict: server and
// model metadata, health, and infer with Triton's classification and binary tensor extensions. Infer goes through
// the same batcher, limits, auth and states as /predict (predictFeatures) and answers the same labels and scores.
// Errors are the protocol's `{"error": "..."}` with the messages /predict gives. The model is read per request:
// the server listens before it is loaded, and until then the model routes answer 503.

import { gunzipSync, inflateSync } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors, RETRY_AFTER_SECONDS, ServiceError } from '../../errors.js'
import type { Loaded } from '../../serving/service.js'
import type { Candidate } from '../../mhe/codec.js'
import { checkFinite, predictFeatures, servedModel } from './predict.js'
import { jsonResponse } from '../schemas.js'
import { parseTopK } from '../top-k.js'
import { BEARER, OPEN, OPENAPI_INFO } from '../openapi.js'
import { encodeResponse, INPUT_NAME, readFeatures, splitInferBody, type OutputTensor } from '../v2-wire.js'
import {
  V2Error,
  V2InferRequest,
  V2InferResponse,
  V2Live,
  V2ModelMetadata,
  V2ModelParams,
  V2ModelReady,
  V2ModelVersionParams,
  V2Ready,
  V2ServerMetadata,
} from '../v2-schemas.js'

/** The server's name in GET /v2. */
export const SERVER_NAME = 'mhe-serve'
export const EXTENSIONS = ['classification', 'binary_tensor_data']

/**
 * Largest dense `probabilities` answer, in values (n x numLabels): past it, 400 asking for the classification
 * extension (the top k), which is what an extreme classifier's C-long score vector is almost always wanted for.
 */
export const MAX_DENSE_PROBABILITIES = 65536

const OUTPUTS = ['label_ids', 'scores', 'labels', 'head_ids', 'probabilities'] as const
type OutputName = (typeof OUTPUTS)[number]
const DEFAULT_OUTPUTS: readonly OutputName[] = ['label_ids', 'scores', 'labels', 'head_ids']

/** The binary part of a parsed infer body rides on the JSON object under this key (invisible to validation). */
const BINARY = Symbol('v2-binary')
const NO_BYTES = Buffer.alloc(0)
const RETRY_AFTER = String(RETRY_AFTER_SECONDS)

/**
 * A request body as sent with Content-Encoding gzip or deflate (Triton's client offers both), inflated up to the body
 * limit; identity or none as it is.
 */
function decompress(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  const enc = (encoding ?? 'identity').trim().toLowerCase()
  if (enc === 'identity' || enc === '') return body
  if (enc !== 'gzip' && enc !== 'deflate') {
    throw new ServiceError('MHE_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding must be gzip, deflate or identity, got ${encoding}`)
  }
  try {
    return enc === 'gzip' ? gunzipSync(body, { maxOutputLength: limit }) : inflateSync(body, { maxOutputLength: limit })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw errors.bodyTooLarge(limit)
    throw errors.badRequest(`body is not valid ${enc} data: ${(err as Error).message}`)
  }
}

const rowsOf = (flat: number[], d: number): number[][] => Array.from({ length: flat.length / d }, (_, i) => flat.slice(i * d, (i + 1) * d))

/** The error shape our error handler sends (src/http/plugins/errors.ts), to be turned into the protocol's. */
function isErrorShape(payload: unknown): payload is { message: string } {
  return typeof payload === 'object' && payload !== null && 'code' in payload && typeof (payload as { message?: unknown }).message === 'string'
}

/** Error answers of the V2 operations, each `{"error"}`: what each status means here. */
const V2_ERRORS = {
  400: 'The request is not what the model takes (inputs, shape, datatype, values, outputs, top_k, classification, dense probabilities too large, binary sizes, malformed JSON).',
  401: 'The server has MHE_API_KEYS and the bearer token is missing or wrong.',
  404: 'No such model or model version on this server.',
  413: 'The body (inflated, if compressed) is larger than MHE_BODY_LIMIT.',
  415: 'The Content-Type is not application/json, application/octet-stream or none, or the Content-Encoding is not gzip, deflate or identity.',
  500: 'A server fault; the details are only in the server log.',
  503: 'Not available now (model not loaded yet, queue full, overloaded, draining, timed out): retry after Retry-After seconds, or on another replica.',
} as const
type V2ErrorStatus = keyof typeof V2_ERRORS
const v2Errors = (...statuses: V2ErrorStatus[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        ...jsonResponse(V2_ERRORS[s], V2Error),
        ...(s === 503 && { headers: { 'Retry-After': { type: 'integer', description: 'seconds to wait before retrying' } } }),
      },
    ]),
  )
const retryAfter = { 'Retry-After': { type: 'integer', description: 'seconds to wait before asking again' } }

type ModelPath = { name: string; version?: string }

const v2Routes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, mhe: service } = app

  // Errors keep their status, headers (Retry-After) and message; only the body's shape is the protocol's.
  app.addHook('preSerialization', (_request, reply, payload, done) => {
    if (reply.statusCode >= 400 && isErrorShape(payload)) done(null, { error: payload.message })
    else done(null, payload)
  })
  app.setNotFoundHandler((request) => {
    throw errors.notFound(request.method, request.url.split('?')[0]!)
  })

  // Triton's Python client sends infer bodies with no Content-Type at all; KServe's with application/json. The body is
  // JSON, or JSON + binary tensors (Inference-Header-Content-Length), so it is read as bytes and split here.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const type = request.headers['content-type']
    if (type !== undefined && !/^application\/(json|octet-stream)\s*(;|$)/i.test(type)) {
      done(errors.unsupportedMediaType(type, 'application/json, application/octet-stream or none'))
      return
    }
    try {
      const raw = decompress(body as Buffer, request.headers['content-encoding'], config.bodyLimit)
      const { json, binary } = splitInferBody(raw, request.headers['inference-header-content-length'])
      if (typeof json === 'object' && json !== null) Object.defineProperty(json, BINARY, { value: binary })
      done(null, json)
    } catch (err) {
      done(err as Error)
    }
  })

  /** The model, if the path names the one served here (and its version, if it names one): 404 otherwise. */
  const modelAt = (loaded: Loaded, params: ModelPath): Loaded => {
    const m = loaded.manifest
    if (params.name !== m.name) throw errors.modelNotFound(`unknown model "${params.name}": this server serves "${m.name}"`)
    if (params.version !== undefined && params.version !== m.version) {
      throw errors.modelNotFound(`model "${m.name}" has no version "${params.version}": it serves version "${m.version}"`)
    }
    return loaded
  }

  app.get(
    '',
    {
      schema: {
        operationId: 'v2ServerMetadata',
        summary: 'V2 server metadata',
        description: 'The server\'s name, version and protocol extensions (Open Inference Protocol).',
        tags: ['v2'],
        security: OPEN,
        response: { 200: jsonResponse('Name, version and extensions.', V2ServerMetadata), ...v2Errors(500) },
      },
    },
    async () => ({ name: SERVER_NAME, version: OPENAPI_INFO.version, extensions: EXTENSIONS }),
  )
  app.get(
    '/health/live',
    {
      schema: {
        operationId: 'v2ServerLive',
        summary: 'V2 server liveness',
        description: 'As `getLiveness`: 200 `{"live": true}` while the process can still predict; 503 `{"live": false}` once its engine thread has died.',
        tags: ['v2'],
        security: OPEN,
        response: { 200: jsonResponse('Alive.', V2Live), 503: jsonResponse('The engine thread died; replace the process.', V2Live) },
      },
      // A lagging process is still alive: the event-loop guard must not make the orchestrator kill it.
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      const live = service.lifecycle.alive
      if (!live) reply.code(503)
      return { live }
    },
  )
  app.get(
    '/health/ready',
    {
      schema: {
        operationId: 'v2ServerReady',
        summary: 'V2 server readiness',
        description: 'As `getReadiness`: 200 `{"ready": true}` once the model is loaded and warmed up; 503 (with Retry-After) while starting, draining or failed.',
        tags: ['v2'],
        security: OPEN,
        response: {
          200: jsonResponse('Ready.', V2Ready),
          503: { ...jsonResponse('Not ready: starting, draining, closing or failed.', V2Ready), headers: retryAfter },
        },
      },
    },
    async (_request, reply) => {
      const ready = service.lifecycle.ready
      if (!ready) reply.code(503).header('Retry-After', RETRY_AFTER)
      return { ready }
    },
  )

  /** The model's metadata, built once per loaded model. */
  let metadata: { for: Loaded; value: V2ModelMetadata } | undefined
  const metadataOf = (loaded: Loaded): V2ModelMetadata => {
    if (metadata?.for === loaded) return metadata.value
    const m = loaded.manifest
    const value: V2ModelMetadata = {
      name: m.name,
      versions: [m.version],
      platform: 'tensorflowjs',
      inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, m.featureDim] }],
      outputs: [
        { name: 'label_ids', datatype: 'INT64', shape: [-1, -1] },
        { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
        { name: 'labels', datatype: 'BYTES', shape: [-1, -1] },
        { name: 'head_ids', datatype: 'INT64', shape: [-1, m.heads.length] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, m.numLabels] },
      ],
    }
    metadata = { for: loaded, value }
    return value
  }

  for (const versioned of [false, true]) {
    const url = versioned ? '/models/:name/versions/:version' : '/models/:name'
    const params = versioned ? V2ModelVersionParams : V2ModelParams
    const op = (base: string) => (versioned ? base.replace('Model', 'ModelVersion') : base)
    const which = versioned ? 'the model version' : 'the model'
    app.get(
      url,
      {
        schema: {
          operationId: op('v2ModelMetadata'),
          summary: versioned ? 'V2 model version metadata' : 'V2 model metadata',
          description: `The inputs and outputs of ${which}: features FP32 [-1, featureDim] in; label_ids, scores, labels, head_ids, probabilities out.`,
          tags: ['v2'],
          security: OPEN,
          params,
          response: { 200: jsonResponse('Inputs and outputs.', V2ModelMetadata), ...v2Errors(404, 500, 503) },
        },
      },
      async (request) => metadataOf(modelAt(servedModel(service), request.params as ModelPath)),
    )
    app.get(
      `${url}/ready`,
      {
        schema: {
          operationId: op('v2ModelReady'),
          summary: versioned ? 'V2 model version readiness' : 'V2 model readiness',
          description: `200 \`{"name", "ready": true}\` once ${which} is loaded and warmed up; 503 (with Retry-After) while starting, draining or failed.`,
          tags: ['v2'],
          security: OPEN,
          params,
          response: {
            200: jsonResponse('Ready.', V2ModelReady),
            503: { ...jsonResponse('Not ready: starting, draining, closing or failed.', V2ModelReady), headers: retryAfter },
            ...v2Errors(404, 500),
          },
        },
      },
      async (request, reply) => {
        const path = request.params as ModelPath
        const loaded = service.loaded
        // Before the model is loaded its name is unknown: not ready, whatever was asked.
        if (loaded !== undefined) modelAt(loaded, path)
        const ready = service.lifecycle.ready
        if (!ready) reply.code(503).header('Retry-After', RETRY_AFTER)
        return { name: path.name, ready }
      },
    )
    app.post(
      `${url}/infer`,
      {
        ...(app.bearerAuth && { onRequest: app.bearerAuth }),
        schema: {
          operationId: op('v2ModelInfer'),
          summary: versioned ? 'V2 inference on a model version' : 'V2 inference',
          description:
            'Input "features" FP32 [n, featureDim], data flat or nested, or as binary data (binary tensor extension: ' +
            'Inference-Header-Content-Length). Request parameter top_k (default 1) sets k of label_ids, scores and labels. ' +
            'Output "probabilities" with parameter classification = k answers BYTES "score:label_id:label", best first; without it, ' +
            `the dense [n, numLabels] scores up to ${MAX_DENSE_PROBABILITIES} values. Outputs with binary_data (or binary_data_output) ` +
            'follow the JSON as bytes, and the answer is application/octet-stream with Inference-Header-Content-Length.',
          tags: ['v2'],
          security: BEARER,
          params,
          body: V2InferRequest,
          response: { 200: jsonResponse('The outputs asked for.', V2InferResponse), ...v2Errors(400, 401, 404, 413, 415, 500, 503) },
        },
      },
      async (request, reply) => infer(request, reply),
    )
  }

  /** Reads which outputs are wanted, how (binary or JSON), and the k each needs; all checked before the model runs. */
  const planOutputs = (body: V2InferRequest, n: number, C: number) => {
    const binaryDefault = body.parameters?.binary_data_output ?? false
    const requested = body.outputs ?? DEFAULT_OUTPUTS.map((name) => ({ name, parameters: undefined }))
    const seen = new Set<string>()
    return requested.map((o) => {
      if (!(OUTPUTS as readonly string[]).includes(o.name)) {
        throw errors.badRequest(`unknown output "${o.name}": the model has ${OUTPUTS.join(', ')}`)
      }
      if (seen.has(o.name)) throw errors.badRequest(`output "${o.name}" is requested twice`)
      seen.add(o.name)
      const name = o.name as OutputName
      const classification = o.parameters?.classification
      if (classification !== undefined) {
        if (name !== 'probabilities') throw errors.badRequest(`the classification parameter applies to output "probabilities", not "${name}"`)
        if (classification < 1 || classification > config.maxTopK) {
          throw new ServiceError('MHE_BAD_TOP_K', `classification must be an integer from 1 to ${config.maxTopK}, got ${classification}`)
        }
      } else if (name === 'probabilities' && n * C > MAX_DENSE_PROBABILITIES) {
        throw errors.badRequest(
          `dense "probabilities" would be ${n} x ${C} = ${n * C} values, more than ${MAX_DENSE_PROBABILITIES}; ` +
            'use the classification extension for the top k instead: {"name": "probabilities", "parameters": {"classification": k}}',
        )
      }
      return { name, classification, binary: o.parameters?.binary_data ?? binaryDefault }
    })
  }

  const infer = async (request: FastifyRequest, reply: FastifyReply) => {
    const loaded = modelAt(servedModel(service), request.params as ModelPath)
    const m = loaded.manifest
    const d = m.featureDim
    const C = m.numLabels
    const body = request.body as V2InferRequest | undefined
    // No body at all: Fastify parses nothing and hands over undefined.
    if (body === undefined || body === null) throw errors.badRequest('expected a JSON inference request with "inputs", got an empty body')
    const binary = (body as { [BINARY]?: Buffer })[BINARY] ?? NO_BYTES
    const topK = parseTopK(body.parameters?.top_k, config.maxTopK)

    const { features, n } = readFeatures(body.inputs, binary, d, config.maxInstances, () => loaded.instanceBuffers.take())
    try {
      checkFinite(features, d)
    } catch (err) {
      // Name the value as it came (1e39, not the Infinity it became in float32), as /predict does.
      const data = body.inputs[0]?.data
      if (data) checkFinite(features, d, Array.isArray(data[0]) ? (data as number[][]) : rowsOf(data as number[], d))
      throw err
    }
    const plan = planOutputs(body, n, C)
    // One batcher call serves every output: k is the most any of them needs (all C for dense probabilities).
    let k = 1
    for (const p of plan) {
      if (p.name === 'probabilities') k = Math.max(k, p.classification ?? C)
      else if (p.name !== 'head_ids') k = Math.max(k, topK)
    }
    // Let go of the parsed body (and its JSON arrays) before waiting for the batch, as /predict does.
    ;(request as { body: unknown }).body = undefined
    const results = await predictFeatures(config, service, loaded, features, k, reply)

    const kOut = Math.min(topK, C)
    const outputs: OutputTensor[] = plan.map((p) => ({ ...tensor(loaded, p.name, p.classification, results, kOut), name: p.name, binary: p.binary }))
    const head = { model_name: m.name, model_version: m.version, ...(body.id !== undefined && { id: body.id }) }
    const encoded = encodeResponse(head, outputs)
    if (encoded.kind === 'json') return encoded.body as V2InferResponse
    return reply
      .header('content-type', 'application/octet-stream')
      .header('inference-header-content-length', String(encoded.headerLength))
      .send(encoded.body)
  }
}

/** One output's values for every instance, row-major. */
function tensor(
  loaded: Loaded,
  name: OutputName,
  classification: number | undefined,
  results: Candidate[][],
  kOut: number,
): Omit<OutputTensor, 'name' | 'binary'> {
  const { labels, manifest: m } = loaded
  const C = m.numLabels
  const n = results.length
  const take = (f: (c: Candidate) => number): Float64Array => {
    const out = new Float64Array(n * kOut)
    results.forEach((cands, i) => {
      for (let j = 0; j < kOut; j++) out[i * kOut + j] = f(cands[j]!)
    })
    return out
  }
  switch (name) {
    case 'label_ids':
      return { datatype: 'INT64', shape: [n, kOut], data: take((c) => c.id) }
    case 'scores':
      return { datatype: 'FP32', shape: [n, kOut], data: take((c) => Math.exp(c.logScore)) }
    case 'labels':
      return { datatype: 'BYTES', shape: [n, kOut], data: results.flatMap((cands) => cands.slice(0, kOut).map((c) => labels.name(c.id))) }
    case 'head_ids': {
      const H = m.heads.length
      return { datatype: 'INT64', shape: [n, H], data: results.flatMap((cands) => cands[0]!.headIds.slice(0, H)) }
    }
    case 'probabilities': {
      if (classification !== undefined) {
        const kc = Math.min(classification, C)
        // Triton's classification format, "value:index:label", best first; the value as float32, as the FP32 scores.
        const data = results.flatMap((cands) => cands.slice(0, kc).map((c) => `${Math.fround(Math.exp(c.logScore))}:${c.id}:${labels.name(c.id)}`))
        return { datatype: 'BYTES', shape: [n, kc], data }
      }
      // Dense: the product of the heads' softmax probabilities for every valid label (the exact top C, scattered).
      const dense = new Float32Array(n * C)
      results.forEach((cands, i) => {
        for (const c of cands) dense[i * C + c.id] = Math.exp(c.logScore)
      })
      return { datatype: 'FP32', shape: [n, C], data: dense }
    }
  }
}

export default v2Routes
