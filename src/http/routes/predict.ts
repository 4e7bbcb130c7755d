// POST /predict: JSON or raw float32 instances in, top-k labels with scores out.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors, ServiceError } from '../../errors.js'
import { systemClock, type AbortLike, BatcherClosedError, CancelledError, DeadlineExceededError, QueueFullError } from '../../serving/batcher.js'
import { ErrorBody, PredictJsonBody, PredictResponse, TopKQuery, BinaryBody } from '../schemas.js'
import type { Config } from '../../config.js'
import type { Instance, Service } from '../../serving/service.js'
import type { Candidate } from '../../mhe/codec.js'

/** Checks that every value is a finite float32 (a float64 like 1e39 overflows to Infinity). */
export function checkFinite(features: Float32Array, d: number, original?: number[][]): void {
  for (let j = 0; j < features.length; j++) {
    if (!Number.isFinite(features[j]!)) {
      const i = Math.floor(j / d)
      const got = original?.[i]?.[j % d] ?? features[j]
      throw errors.badInstance(`instance ${i} value ${j % d} is ${String(got)}, expected a finite float32 number`)
    }
  }
}

/** `one` gives a featureDim-long buffer for a one-instance request (recycled: most requests carry one). */
function fromJson(instances: number[][], d: number, one: () => Float32Array): Float32Array {
  const features = instances.length === 1 ? one() : new Float32Array(instances.length * d)
  for (let i = 0; i < instances.length; i++) {
    const row = instances[i]!
    if (row.length !== d) throw errors.badInstance(`instance ${i} has ${row.length} values, the model expects ${d}`)
    features.set(row, i * d)
  }
  checkFinite(features, d, instances)
  return features
}

function fromBinary(body: Buffer, d: number, one: () => Float32Array): Float32Array {
  if (body.length === 0 || body.length % (4 * d) !== 0) throw errors.badBinaryBody(body.length, d)
  // Copy into an aligned buffer: the body's bytes may start at any offset. Wire format is little-endian.
  const features = body.length === 4 * d ? one() : new Float32Array(body.length / 4)
  new Uint8Array(features.buffer).set(body)
  checkFinite(features, d)
  return features
}

function parseTopK(raw: unknown, max: number): number {
  if (raw === undefined) return 1
  const k = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > max) throw errors.badTopK(raw, max)
  return k
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

/** Maps the batcher's refusals to HTTP errors; anything else is the engine's fault (500). */
function toServiceError(err: unknown, config: Config, service: Service): ServiceError {
  if (err instanceof ServiceError) return err
  if (err instanceof QueueFullError) return errors.queueFull(1)
  if (err instanceof BatcherClosedError) return errors.shuttingDown(1)
  if (err instanceof DeadlineExceededError) return errors.timeout(config.requestTimeoutMs)
  if (err instanceof CancelledError) return errors.clientClosed()
  if (service.state === 'failed') return errors.engineFailed() // the batch in flight when the engine thread died
  throw err
}

/**
 * Runs n = features.length / featureDim instances through the batcher, k labels each (capped at numLabels): the
 * limits, service states, deadline and cancellation every prediction route shares (/predict and the V2 infer).
 */
export async function predictInstances(service: Service, config: Config, features: Float32Array, k: number, reply: FastifyReply): Promise<Candidate[][]> {
  const d = service.manifest.featureDim
  const n = features.length / d
  if (n > config.maxInstances) throw errors.tooManyInstances(n, config.maxInstances)
  if (service.state === 'starting') throw errors.notReady()
  if (service.state === 'failed') throw errors.engineFailed()
  const kEff = Math.min(k, service.manifest.numLabels)
  const items: Instance[] = []
  for (let i = 0; i < n; i++) items.push({ features: features.subarray(i * d, (i + 1) * d), k: kEff })

  // A client that leaves takes its queued instances with it.
  const abort = new ConnectionClosed()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort()
  })
  let results: Candidate[][]
  try {
    results = await service.batcher.submit(items, {
      signal: abort,
      deadline: systemClock.now() + config.requestTimeoutMs,
    })
  } catch (err) {
    throw toServiceError(err, config, service)
  }
  // Finite features can still overflow float32 inside the model (e.g. 3e38): NaN scores are the input's fault.
  const bad = results.findIndex((cands) => cands.some((c) => Number.isNaN(c.logScore)))
  if (bad >= 0) {
    throw errors.badInstance(`instance ${bad} overflows the model's float32 outputs (NaN scores), expected feature values of a smaller magnitude`)
  }
  return results
}

export default async function predictRoutes(app: FastifyInstance, opts: { config: Config; service: Service }): Promise<void> {
  const { config, service } = opts
  const { manifest, labels } = service
  const d = manifest.featureDim
  const takeBuffer = () => service.instanceBuffers.take()

  const toPrediction = (candidates: Candidate[]) => {
    const topK = candidates.map((c) => ({ label_id: c.id, label: labels.name(c.id), score: Math.exp(c.logScore) }))
    const best = candidates[0]!
    return { ...topK[0]!, head_ids: best.headIds, top_k: topK }
  }

  app.post(
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
    async (request: FastifyRequest, reply: FastifyReply) => {
      const query = request.query as { top_k?: unknown }
      let features: Float32Array
      let k: number
      // No Content-Type and no body: Fastify parses nothing and hands over undefined.
      if (request.body === undefined || request.body === null) throw errors.unsupportedMediaType(request.headers['content-type'])
      if (Buffer.isBuffer(request.body)) {
        features = fromBinary(request.body, d, takeBuffer)
        k = parseTopK(query.top_k, config.maxTopK)
      } else {
        const body = request.body as PredictJsonBody
        if (body.instances.length === 0) throw errors.emptyBatch()
        if (body.instances.length > config.maxInstances) throw errors.tooManyInstances(body.instances.length, config.maxInstances)
        // A query top_k is checked even when the body's wins: a bad one is never silently ignored.
        const queryK = parseTopK(query.top_k, config.maxTopK)
        k = body.top_k === undefined ? queryK : parseTopK(body.top_k, config.maxTopK)
        features = fromJson(body.instances, d, takeBuffer)
      }
      // Let go of the parsed body before waiting for the batch. Held across the wait, its arrays (one JS array of
      // featureDim numbers per instance) survive scavenges and get copied and promoted: a GC cost that grows with
      // concurrency (bench/README.md). Only the Float32Array copy is used from here on.
      ;(request as { body: unknown }).body = undefined
      const results = await predictInstances(service, config, features, k, reply)
      return { model: manifest.name, version: manifest.version, predictions: results.map(toPrediction) }
    },
  )
}
