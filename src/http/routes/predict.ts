// POST /predict (JSON) and POST /predict/binary (raw float32): instances in, top-k labels with scores out, from the
// default model; POST /models/{name}/predict[/binary][?version=] from any model or pinned version. Each answer
// names the version that computed it (`model_version`, and the x-mhe-model-version header).

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../errors.js'
import { systemClock, type AbortLike } from '../../serving/batcher.js'
import { BinaryBody, errorResponses, jsonResponse, ModelParams, ModelPredictQuery, PredictJsonBody, PredictResponse, TopKQuery, type ModelVersionQuery as VersionQuery } from '../schemas.js'
import { BEARER, documented } from '../openapi.js'
import { parseTopK } from '../top-k.js'
import type { Instance, Loaded, Service } from '../../serving/service.js'
import type { Config } from '../../config.js'
import type { ServedVersion } from '../../serving/models.js'
import { MODEL_NAME_HEADER, MODEL_VERSION_HEADER } from '../model-address.js'
import type { Candidate } from '../../mhe/codec.js'
import { PackedRows } from '../packed-rows.js'
import { INSTANCES_DEPTH } from '../scan-instances.js'
import { predictAnswerJson } from '../predict-answer.js'

const JSON_UTF8 = 'application/json; charset=utf-8'

/** Value j of n x d features is not a finite float32; `sent` is what the client sent there. */
const notFinite = (j: number, d: number, sent: unknown) =>
  errors.badInstance(`instance ${Math.floor(j / d)} value ${j % d} is ${String(sent)}, expected a finite float32 number`)

/**
 * Whether every value is finite: a multiply-add per value, as any NaN or ±Infinity makes a sum NaN (Infinity * 0 is
 * NaN) and finite values keep it ±0; four sums, so that the adds do not wait on each other. 2.4x faster than
 * Number.isFinite on each value (0.42 vs 1.0 µs for 768 values).
 */
function allFinite(v: Float32Array): boolean {
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  const end4 = v.length - (v.length % 4)
  let j = 0
  for (; j < end4; j += 4) {
    s0 += v[j]! * 0
    s1 += v[j + 1]! * 0
    s2 += v[j + 2]! * 0
    s3 += v[j + 3]! * 0
  }
  for (; j < v.length; j++) s0 += v[j]! * 0
  return s0 + s1 + s2 + s3 === 0
}

/**
 * Checks that every value is a finite float32 (a float64 like 1e39 overflows to Infinity). `original` gives the values
 * as sent, for the message: rows, or value j of the flat array.
 */
export function checkFinite(features: Float32Array, d: number, original?: number[][] | ((j: number) => number | undefined)): void {
  if (allFinite(features)) return
  const sent = typeof original === 'function' ? original : (j: number) => original?.[Math.floor(j / d)]?.[j % d]
  for (let j = 0; j < features.length; j++) {
    if (!Number.isFinite(features[j]!)) throw notFinite(j, d, sent(j) ?? features[j])
  }
}

/** {"instances": [[...]]}: an object, an array, arrays of numbers. */
const PREDICT_JSON_DEPTH = INSTANCES_DEPTH

/** Recycled featureDim-long buffers for one-instance requests (most requests carry one). */
type OneInstancePool = Loaded['instanceBuffers']

const wrongLength = (i: number, got: number, d: number) => errors.badInstance(`instance ${i} has ${got} values, the model expects ${d}`)

function fromJson(instances: number[][] | PackedRows, d: number, pool: OneInstancePool): Float32Array {
  if (instances instanceof PackedRows) return fromPacked(instances, d)
  const features = instances.length === 1 ? pool.take() : new Float32Array(instances.length * d)
  for (let i = 0; i < instances.length; i++) {
    const row = instances[i]!
    if (row.length !== d) throw wrongLength(i, row.length, d)
    features.set(row, i * d)
  }
  checkFinite(features, d, (j) => instances[Math.floor(j / d)]?.[j % d])
  return features
}

/** Instances parsed on the JSON thread: already float32 and checked there, so used as they are (no copy, no scan). */
function fromPacked(rows: PackedRows, d: number): Float32Array {
  for (let i = 0; i < rows.length; i++) if (rows.lengths[i] !== d) throw wrongLength(i, rows.lengths[i]!, d)
  if (rows.nonFinite !== undefined) throw notFinite(rows.nonFinite.at, d, rows.nonFinite.sent)
  return rows.values
}

function fromBinary(body: Buffer, d: number, pool: OneInstancePool): Float32Array {
  if (body.length === 0 || body.length % (4 * d) !== 0) throw errors.badBinaryBody(body.length, d)
  // Copy into an aligned buffer: the body's bytes may start at any offset. Wire format is little-endian.
  const features = body.length === 4 * d ? pool.take() : new Float32Array(body.length / 4)
  new Uint8Array(features.buffer).set(body)
  checkFinite(features, d)
  return features
}

/**
 * The client's connection as the batcher's cancellation signal. An AbortController would do, but its EventTarget
 * costs ~3% of the server's CPU on one-instance requests (cpu profile, bench/README.md); this holds one listener.
 */
class ConnectionClosed implements AbortLike {
  aborted = false
  private listener: (() => void) | undefined

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    const listener = this.listener
    this.listener = undefined
    listener?.()
  }
}

/**
 * Queues n = features.length / featureDim instances, k labels each (capped at numLabels), and waits for their
 * batch: the limits, deadline and cancellation every prediction route shares (/predict, /models/{name}/predict, V2
 * infer). The caller holds a lease on the version `loaded` belongs to (ModelSet.acquire) until this settles.
 */
export async function predictFeatures(
  config: Config,
  service: Service,
  loaded: Loaded,
  features: Float32Array,
  k: number,
  reply: FastifyReply,
): Promise<Candidate[][]> {
  const { manifest } = loaded
  const d = manifest.featureDim
  const n = features.length / d
  if (n > config.maxInstances) throw errors.tooManyInstances(n, config.maxInstances)
  if (service.state === 'failed') throw errors.engineFailed()
  const kEff = Math.min(k, manifest.numLabels)
  const items: Instance[] = []
  for (let i = 0; i < n; i++) items.push({ features: features.subarray(i * d, (i + 1) * d), k: kEff })

  // A client that leaves takes its queued instances with it.
  const abort = new ConnectionClosed()
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort()
  })
  // The batcher's refusals (queue full, closed, deadline, client gone) go to the error handler as they are.
  // Room held for the request when it arrived (plugins/admission.ts) is used now: admitted, it is queued.
  const results = await loaded.batcher.submit(items, {
    signal: abort,
    deadline: systemClock.now() + config.requestTimeoutMs,
    reserved: reply.server.admission.take(reply.request, loaded.batcher, n, d),
  })
  // Finite features can still overflow float32 inside the model (e.g. 3e38): NaN scores are the input's fault.
  const bad = results.findIndex((cands) => cands.some((c) => Number.isNaN(c.logScore)))
  if (bad >= 0) {
    throw errors.badInstance(`instance ${bad} overflows the model's float32 outputs (NaN scores), expected feature values of a smaller magnitude`)
  }
  return results
}

/**
 * The version a request goes to, leased until the caller releases it (an unload waits for that): 503 while nothing is
 * loaded yet or after the engine failed, 404 for a model or version not served. `name` undefined: the default model.
 */
export function acquireModel(service: Service, name: string | undefined, version?: number): ServedVersion {
  if (service.state === 'failed') throw errors.engineFailed()
  if (service.state === 'starting') throw errors.notReady()
  return service.models.acquire(name, version)
}

/** `application/json; charset=utf-8` -> `application/json`. */
const mediaType = (contentType: string | undefined): string | undefined => contentType?.split(';', 1)[0]!.trim().toLowerCase()

/** The request as the schemas type it; the body is JSON or, for application/octet-stream, raw bytes. */
interface PredictRequest {
  /** Large JSON bodies arrive with their instances packed (src/http/json-thread.ts). */
  Body: (Omit<PredictJsonBody, 'instances'> & { instances: PredictJsonBody['instances'] | PackedRows }) | Buffer | undefined
  Querystring: TopKQuery & Partial<VersionQuery>
  Params: { name?: string }
}

interface BinaryRequest {
  Body: Buffer | undefined
  Querystring: TopKQuery & Partial<VersionQuery>
  Params: { name?: string }
}

const predictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, mhe: service } = app

  /** Queues the instances of a parsed request, waits for their batch and answers; shared by every route. */
  const answer = async (served: ServedVersion, features: Float32Array, k: number, request: FastifyRequest, reply: FastifyReply) => {
    // Let go of the parsed body before waiting for the batch. Held across the wait, its arrays (one JS array of
    // featureDim numbers per instance) survive scavenges and get copied and promoted: a GC cost that grows with
    // concurrency (bench/README.md). Only the Float32Array copy is used from here on.
    ;(request as { body: unknown }).body = undefined
    const results = await predictFeatures(config, service, served.loaded, features, k, reply)
    const { manifest, labels } = served.loaded
    const modelVersion = String(served.version)
    // Already JSON (predict-answer.ts): with its content type set, Fastify sends the text as it is.
    reply.header(MODEL_NAME_HEADER, served.model).header(MODEL_VERSION_HEADER, modelVersion).header('content-type', JSON_UTF8)
    return predictAnswerJson({ model: served.model, version: manifest.version, modelVersion }, results, labels)
  }

  const acquire = (request: FastifyRequest<{ Params: { name?: string }; Querystring: Partial<VersionQuery> }>): ServedVersion => {
    const served = acquireModel(service, request.params.name, request.query.version)
    request.mheServed = { model: served.model, version: served.version }
    return served
  }

  const predictJson = async (request: FastifyRequest<PredictRequest>, reply: FastifyReply) => {
    const { body, query } = request
    // No Content-Type and no body: Fastify parses nothing and hands over undefined.
    if (body === undefined || body === null) throw errors.unsupportedMediaType(request.headers['content-type'])
    const served = acquire(request)
    try {
      const loaded = served.loaded
      const d = loaded.manifest.featureDim
      if (Buffer.isBuffer(body)) return await answer(served, fromBinary(body, d, loaded.instanceBuffers), parseTopK(query.top_k, config.maxTopK), request, reply)
      if (body.instances.length === 0) throw errors.emptyBatch()
      if (body.instances.length > config.maxInstances) throw errors.tooManyInstances(body.instances.length, config.maxInstances)
      // A bad query top_k is named first; a good one given in the body too is refused: neither silently wins.
      const queryK = parseTopK(query.top_k, config.maxTopK)
      if (query.top_k !== undefined && body.top_k !== undefined) throw errors.badRequest('top_k is given in both the query and the body; give it once')
      const k = body.top_k === undefined ? queryK : parseTopK(body.top_k, config.maxTopK)
      return await answer(served, fromJson(body.instances, d, loaded.instanceBuffers), k, request, reply)
    } finally {
      served.release()
    }
  }

  const predictBinary = async (request: FastifyRequest<BinaryRequest>, reply: FastifyReply) => {
    const body = request.body
    if (!Buffer.isBuffer(body)) throw errors.unsupportedMediaType(request.headers['content-type'], 'application/octet-stream')
    const served = acquire(request)
    try {
      const loaded = served.loaded
      return await answer(served, fromBinary(body, loaded.manifest.featureDim, loaded.instanceBuffers), parseTopK(request.query.top_k, config.maxTopK), request, reply)
    } finally {
      served.release()
    }
  }

  // Checked before the body is read: a JSON body is refused, not parsed.
  const octetStreamOnly = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    const type = request.headers['content-type']
    done(mediaType(type) === 'application/octet-stream' ? undefined : errors.unsupportedMediaType(type, 'application/octet-stream'))
  }

  const jsonSchema = {
    tags: ['predict'],
    security: BEARER,
    body: { content: { 'application/json': { schema: PredictJsonBody } } },
    response: { 200: jsonResponse('One prediction per instance, in order.', PredictResponse), ...errorResponses(400, 401, 405, 408, 413, 415, 431, 500, 503) },
  }
  const binarySchema = {
    tags: ['predict'],
    security: BEARER,
    body: { content: { 'application/octet-stream': { schema: BinaryBody } } },
    response: { 200: jsonResponse('One prediction per instance, in order.', PredictResponse), ...errorResponses(400, 401, 405, 408, 413, 415, 431, 500, 503) },
  }

  app.post<PredictRequest>(
    '/predict',
    {
      schema: {
        ...jsonSchema,
        operationId: 'predict',
        summary: 'Predict labels for a batch of feature vectors (JSON)',
        description:
          'Takes `{"instances": [[...featureDim numbers], ...], "top_k": k}` and answers one prediction per instance, ' +
          'in order, each with its top_k labels best first, from the default model. For raw float32 bodies, use `predictBinary`.',
        querystring: TopKQuery,
      },
      // Raw float32 bodies (and their ?top_k) are still taken here, as before predictBinary; the document shows
      // them only on predictBinary, so that every generator sees one media type per operation.
      config: { admission: true, swaggerTransform: ({ schema, url }) => documented({ ...schema, querystring: undefined }, url), jsonDepth: PREDICT_JSON_DEPTH, packInstances: true },
    },
    predictJson,
  )

  app.post<BinaryRequest>(
    '/predict/binary',
    {
      schema: {
        ...binarySchema,
        operationId: 'predictBinary',
        summary: 'Predict labels for a batch of raw float32 feature vectors',
        description:
          'The fast path for heavy clients: the body is raw little-endian float32, n x featureDim values (n is ' +
          'inferred from the length), `top_k` in the query. Answers exactly what `predict` answers for the same values.',
        querystring: TopKQuery,
      },
      config: { admission: true },
      onRequest: octetStreamOnly,
    },
    predictBinary,
  )

  app.post<PredictRequest>(
    '/models/:name/predict',
    {
      schema: {
        ...jsonSchema,
        operationId: 'predictModel',
        summary: 'Predict labels with a named model (JSON)',
        description:
          'As `predict`, from the model `name` of the repository: its newest ready version, or the one `version` pins. ' +
          '404 `MHE_MODEL_NOT_FOUND` for a model or version not served; 503 `MHE_NOT_READY` while it loads.',
        params: ModelParams,
        querystring: ModelPredictQuery,
        response: { ...jsonSchema.response, ...errorResponses(404) },
      },
      config: { admission: true, jsonDepth: PREDICT_JSON_DEPTH, packInstances: true },
    },
    predictJson,
  )

  app.post<BinaryRequest>(
    '/models/:name/predict/binary',
    {
      schema: {
        ...binarySchema,
        operationId: 'predictModelBinary',
        summary: 'Predict labels with a named model (raw float32)',
        description: 'As `predictBinary`, from the model `name`: its newest ready version, or the one `version` pins.',
        params: ModelParams,
        querystring: ModelPredictQuery,
        response: { ...binarySchema.response, ...errorResponses(404) },
      },
      config: { admission: true },
      onRequest: octetStreamOnly,
    },
    predictBinary,
  )
}

export default predictRoutes
