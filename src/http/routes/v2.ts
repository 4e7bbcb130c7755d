// The Open Inference Protocol (KServe V2 REST, as Triton, KServe and MLServer speak it) beside /predict: server and
// model metadata, health, and infer with Triton's classification and binary tensor extensions. Infer goes through
// the same batcher, limits, auth and states as /predict (predictInstances) and answers the same labels and scores.
// Errors are the protocol's `{"error": "..."}` with the messages /predict gives.

import { gunzipSync, inflateSync } from 'node:zlib'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.js'
import type { bearerAuth } from '../auth.js'
import { errors, ServiceError } from '../../errors.js'
import type { Service } from '../../serving/service.js'
import type { Candidate } from '../../mhe/codec.js'
import { checkFinite, predictInstances } from './predict.js'
import { encodeResponse, INPUT_NAME, readFeatures, splitInferBody, type OutputTensor } from '../v2-wire.js'
import {
  V2Error,
  V2InferRequest,
  V2InferResponse,
  V2Live,
  V2ModelMetadata,
  V2ModelParams,
  V2ModelReady,
  V2Ready,
  V2ServerMetadata,
} from '../v2-schemas.js'

export interface V2Options {
  config: Config
  service: Service
  /** The bearer-token check of /predict, applied to infer (metadata and health stay open, as /model and /health). */
  auth: ReturnType<typeof bearerAuth>
  serverVersion: string
}

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

/**
 * A request body as sent with Content-Encoding gzip or deflate (Triton's client offers both), inflated up to the body
 * limit; identity or none as it is.
 */
function decompress(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  const enc = (encoding ?? 'identity').trim().toLowerCase()
  if (enc === 'identity' || enc === '') return body
  if (enc !== 'gzip' && enc !== 'deflate') {
    throw new ServiceError('MHE_UNSUPPORTED_MEDIA_TYPE', 415, `Content-Encoding must be gzip, deflate or identity, got ${encoding}`)
  }
  try {
    return enc === 'gzip' ? gunzipSync(body, { maxOutputLength: limit }) : inflateSync(body, { maxOutputLength: limit })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw errors.bodyTooLarge(limit)
    throw errors.badRequest(`body is not valid ${enc} data: ${(err as Error).message}`)
  }
}

const rowsOf = (flat: number[], d: number): number[][] => Array.from({ length: flat.length / d }, (_, i) => flat.slice(i * d, (i + 1) * d))

/** The Fastify error shape our error handler sends, turned into the protocol's error object. */
function isErrorShape(payload: unknown): payload is { message: string } {
  return typeof payload === 'object' && payload !== null && 'code' in payload && typeof (payload as { message?: unknown }).message === 'string'
}

export default async function v2Routes(app: FastifyInstance, opts: V2Options): Promise<void> {
  await app.register(async (v2) => routes(v2, opts), { prefix: '/v2' })
}

async function routes(app: FastifyInstance, opts: V2Options): Promise<void> {
  const { config, service, auth } = opts
  const m = service.manifest
  const labels = service.labels
  const d = m.featureDim
  const C = m.numLabels

  // Errors keep their status, headers (Retry-After) and message; only the body's shape is the protocol's.
  app.addHook('preSerialization', (_request, reply, payload, done) => {
    if (reply.statusCode >= 400 && isErrorShape(payload)) done(null, { error: payload.message })
    else done(null, payload)
  })
  app.setNotFoundHandler(async (request) => {
    throw new ServiceError('MHE_NOT_FOUND', 404, `no route ${request.method} ${request.url.split('?')[0]}`)
  })

  // Triton's Python client sends infer bodies with no Content-Type at all; KServe's with application/json. The body is
  // JSON, or JSON + binary tensors (Inference-Header-Content-Length), so it is read as bytes and split here.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const type = request.headers['content-type']
    if (type !== undefined && !/^application\/(json|octet-stream)\s*(;|$)/i.test(type)) {
      done(errors.unsupportedMediaType(type))
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

  /** 404 unless the path names the model served here (and its version, if it names one). */
  const checkModel = (params: { name: string; version?: string }): void => {
    if (params.name !== m.name) throw errors.modelNotFound(`unknown model "${params.name}": this server serves "${m.name}"`)
    if (params.version !== undefined && params.version !== m.version) {
      throw errors.modelNotFound(`model "${m.name}" has no version "${params.version}": it serves version "${m.version}"`)
    }
  }

  app.get(
    '',
    { schema: { summary: 'V2 server metadata', tags: ['v2'], operationId: 'v2ServerMetadata', response: { 200: V2ServerMetadata } } },
    async () => ({ name: SERVER_NAME, version: opts.serverVersion, extensions: EXTENSIONS }),
  )
  app.get(
    '/health/live',
    {
      schema: { summary: 'V2 server liveness', tags: ['v2'], operationId: 'v2Live', response: { 200: V2Live, 503: V2Live } },
      // A lagging process is still alive: the event-loop guard must not make the orchestrator kill it.
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      const live = service.state !== 'failed'
      if (!live) reply.code(503)
      return { live }
    },
  )
  app.get(
    '/health/ready',
    { schema: { summary: 'V2 server readiness', tags: ['v2'], operationId: 'v2Ready', response: { 200: V2Ready, 503: V2Ready } } },
    async (_request, reply) => {
      const ready = service.state === 'ready'
      if (!ready) reply.code(503).header('Retry-After', '1')
      return { ready }
    },
  )

  const metadata = {
    name: m.name,
    versions: [m.version],
    platform: 'tensorflowjs',
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, d] }],
    outputs: [
      { name: 'label_ids', datatype: 'INT64', shape: [-1, -1] },
      { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
      { name: 'labels', datatype: 'BYTES', shape: [-1, -1] },
      { name: 'head_ids', datatype: 'INT64', shape: [-1, m.heads.length] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, C] },
    ],
  } satisfies V2ModelMetadata
  for (const url of ['/models/:name', '/models/:name/versions/:version']) {
    app.get(
      url,
      {
        schema: {
          summary: 'V2 model metadata',
          tags: ['v2'],
          operationId: url.includes('versions') ? 'v2ModelVersionMetadata' : 'v2ModelMetadata',
          params: V2ModelParams,
          response: { 200: V2ModelMetadata, '4xx': V2Error },
        },
      },
      async (request) => {
        checkModel(request.params as { name: string; version?: string })
        return metadata
      },
    )
    app.get(
      `${url}/ready`,
      {
        schema: {
          summary: 'V2 model readiness',
          tags: ['v2'],
          operationId: url.includes('versions') ? 'v2ModelVersionReady' : 'v2ModelReady',
          params: V2ModelParams,
          response: { 200: V2ModelReady, 503: V2ModelReady, '4xx': V2Error },
        },
      },
      async (request, reply) => {
        checkModel(request.params as { name: string; version?: string })
        const ready = service.state === 'ready'
        if (!ready) reply.code(503).header('Retry-After', '1')
        return { name: m.name, ready }
      },
    )
    app.post(
      `${url}/infer`,
      {
        ...(auth ? { onRequest: auth } : {}),
        schema: {
          summary: 'V2 inference',
          description:
            'Input "features" FP32 [n, featureDim], data flat or nested, or as binary data. Request parameter top_k (default 1) ' +
            'sets k of label_ids, scores and labels. Output "probabilities" with parameter classification = k answers BYTES ' +
            `"score:label_id:label", best first; without it, the dense [n, numLabels] scores up to ${MAX_DENSE_PROBABILITIES} values.`,
          tags: ['v2'],
          operationId: url.includes('versions') ? 'v2ModelVersionInfer' : 'v2ModelInfer',
          params: V2ModelParams,
          body: V2InferRequest,
          response: { 200: V2InferResponse, '4xx': V2Error, '5xx': V2Error },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => infer(request, reply),
    )
  }

  /** Reads which outputs are wanted, how (binary or JSON), and the k each needs; all checked before the model runs. */
  const planOutputs = (body: V2InferRequest, n: number) => {
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
        if (!Number.isInteger(classification) || classification < 1 || classification > config.maxTopK) {
          throw new ServiceError('MHE_BAD_TOP_K', 400, `classification must be an integer from 1 to ${config.maxTopK}, got ${classification}`)
        }
      } else if (name === 'probabilities' && n * C > MAX_DENSE_PROBABILITIES) {
        throw errors.badRequest(
          `dense "probabilities" would be ${n} x ${C} = ${n * C} values, more than ${MAX_DENSE_PROBABILITIES}; ` +
            'ask for the top k instead: {"name": "probabilities", "parameters": {"classification": k}}',
        )
      }
      return { name, classification, binary: o.parameters?.binary_data ?? binaryDefault }
    })
  }

  const infer = async (request: FastifyRequest, reply: FastifyReply) => {
    checkModel(request.params as { name: string; version?: string })
    const body = request.body as V2InferRequest | undefined
    // No body at all: Fastify parses nothing and hands over undefined.
    if (body === undefined || body === null) throw errors.badRequest('expected a JSON inference request with "inputs", got an empty body')
    const binary = (body as { [BINARY]?: Buffer })[BINARY] ?? NO_BYTES
    const topK = body.parameters?.top_k ?? 1
    if (topK > config.maxTopK) throw errors.badTopK(topK, config.maxTopK)

    const { features, n } = readFeatures(body.inputs, binary, d, config.maxInstances, () => service.instanceBuffers.take())
    try {
      checkFinite(features, d)
    } catch (err) {
      // Name the value as it came (1e39, not the Infinity it became in float32), as /predict does.
      const data = body.inputs[0]?.data
      if (data) checkFinite(features, d, Array.isArray(data[0]) ? (data as number[][]) : rowsOf(data as number[], d))
      throw err
    }
    const plan = planOutputs(body, n)
    // One batcher call serves every output: k is the most any of them needs (all C for dense probabilities).
    let k = 0
    for (const p of plan) {
      if (p.name === 'probabilities') k = Math.max(k, p.classification ?? C)
      else if (p.name !== 'head_ids') k = Math.max(k, topK)
    }
    // Let go of the parsed body (and its JSON arrays) before waiting for the batch, as /predict does.
    ;(request as { body: unknown }).body = undefined
    const results = await predictInstances(service, config, features, Math.max(k, 1), reply)

    const kOut = Math.min(topK, C)
    const outputs: OutputTensor[] = plan.map((p) => {
      const t = tensor(p.name, p.classification, results, kOut)
      return { ...t, name: p.name, binary: p.binary }
    })
    const head = { model_name: m.name, model_version: m.version, ...(body.id !== undefined ? { id: body.id } : {}) }
    const encoded = encodeResponse(head, outputs)
    if (encoded.kind === 'json') return encoded.body
    reply.header('content-type', 'application/octet-stream').header('inference-header-content-length', String(encoded.headerLength))
    return encoded.body
  }

  /** One output's values for every instance, row-major. */
  const tensor = (name: OutputName, classification: number | undefined, results: Candidate[][], kOut: number): Omit<OutputTensor, 'name' | 'binary'> => {
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
}
