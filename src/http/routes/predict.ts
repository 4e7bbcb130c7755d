// POST /predict: JSON or raw float32 instances in, top-k labels with scores out.

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../errors.js'
import { systemClock, type AbortLike } from '../../serving/batcher.js'
import { ErrorBody, PredictJsonBody, PredictResponse, TopKQuery, BinaryBody } from '../schemas.js'
import { parseTopK } from '../top-k.js'
import type { Instance, Loaded } from '../../serving/service.js'
import type { Candidate } from '../../mhe/codec.js'

/** Checks that every value is a finite float32 (a float64 like 1e39 overflows to Infinity). */
function checkFinite(features: Float32Array, d: number, original?: number[][]): void {
  for (let j = 0; j < features.length; j++) {
    if (!Number.isFinite(features[j]!)) {
      const i = Math.floor(j / d)
      const got = original?.[i]?.[j % d] ?? features[j]
      throw errors.badInstance(`instance ${i} value ${j % d} is ${String(got)}, expected a finite float32 number`)
    }
  }
}

/** Recycled featureDim-long buffers for one-instance requests (most requests carry one). */
type OneInstancePool = Loaded['instanceBuffers']

function fromJson(instances: number[][], d: number, pool: OneInstancePool): Float32Array {
  const features = instances.length === 1 ? pool.take() : new Float32Array(instances.length * d)
  for (let i = 0; i < instances.length; i++) {
    const row = instances[i]!
    if (row.length !== d) throw errors.badInstance(`instance ${i} has ${row.length} values, the model expects ${d}`)
    features.set(row, i * d)
  }
  checkFinite(features, d, instances)
  return features
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

/** The request as the schemas type it; the body is JSON or, for application/octet-stream, raw bytes. */
interface PredictRequest {
  Body: PredictJsonBody | Buffer | undefined
  Querystring: TopKQuery
}

const predictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, mhe: service } = app

  const toPrediction = (candidates: Candidate[], labels: Loaded['labels']) => {
    const topK = candidates.map((c) => ({ label_id: c.id, label: labels.name(c.id), score: Math.exp(c.logScore) }))
    const best = candidates[0]!
    return { ...topK[0]!, head_ids: best.headIds, top_k: topK }
  }

  app.post<PredictRequest>(
    '/predict',
    {
      schema: {
        summary: 'Predict labels for a batch of feature vectors',
        description:
          'JSON `{"instances": [[...featureDim numbers], ...], "top_k": k}`, or `application/octet-stream` with raw ' +
          'little-endian float32 values (n x featureDim) and `top_k` in the query. Both answer the same JSON.',
        tags: ['predict'],
        querystring: TopKQuery,
        body: {
          content: {
            'application/json': { schema: PredictJsonBody },
            'application/octet-stream': { schema: BinaryBody },
          },
        },
        response: { 200: PredictResponse, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { body, query } = request
      // No Content-Type and no body: Fastify parses nothing and hands over undefined.
      if (body === undefined || body === null) throw errors.unsupportedMediaType(request.headers['content-type'])
      // Listening while the model loads (or after it failed to): nothing to predict with yet.
      const loaded = service.loaded
      if (loaded === undefined) throw service.state === 'failed' ? errors.engineFailed() : errors.notReady()
      const { manifest, labels } = loaded
      const d = manifest.featureDim
      let features: Float32Array
      let k: number
      if (Buffer.isBuffer(body)) {
        features = fromBinary(body, d, loaded.instanceBuffers)
        k = parseTopK(query.top_k, config.maxTopK)
      } else {
        if (body.instances.length === 0) throw errors.emptyBatch()
        if (body.instances.length > config.maxInstances) throw errors.tooManyInstances(body.instances.length, config.maxInstances)
        // A query top_k is checked even when the body's wins: a bad one is never silently ignored.
        const queryK = parseTopK(query.top_k, config.maxTopK)
        k = body.top_k === undefined ? queryK : parseTopK(body.top_k, config.maxTopK)
        features = fromJson(body.instances, d, loaded.instanceBuffers)
      }
      // Let go of the parsed body before waiting for the batch. Held across the wait, its arrays (one JS array of
      // featureDim numbers per instance) survive scavenges and get copied and promoted: a GC cost that grows with
      // concurrency (bench/README.md). Only the Float32Array copy is used from here on.
      request.body = undefined
      const n = features.length / d
      if (n > config.maxInstances) throw errors.tooManyInstances(n, config.maxInstances)
      if (service.state === 'failed') throw errors.engineFailed()
      const kEff = Math.min(k, manifest.numLabels)
      const items: Instance[] = []
      for (let i = 0; i < n; i++) items.push({ features: features.subarray(i * d, (i + 1) * d), k: kEff })

      // A client that leaves takes its queued instances with it.
      const abort = new ConnectionClosed()
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort()
      })
      // The batcher's refusals (queue full, closed, deadline, client gone) go to the error handler as they are.
      const results = await loaded.batcher.submit(items, {
        signal: abort,
        deadline: systemClock.now() + config.requestTimeoutMs,
      })
      // Finite features can still overflow float32 inside the model (e.g. 3e38): NaN scores are the input's fault.
      const bad = results.findIndex((cands) => cands.some((c) => Number.isNaN(c.logScore)))
      if (bad >= 0) {
        throw errors.badInstance(`instance ${bad} overflows the model's float32 outputs (NaN scores), expected feature values of a smaller magnitude`)
      }
      return { model: manifest.name, version: manifest.version, predictions: results.map((c) => toPrediction(c, labels)) }
    },
  )
}

export default predictRoutes
