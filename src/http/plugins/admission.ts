// Refusal before the body: on routes that opt in (`config: { admission: true }`), room in the batch queue is held
// for a request as soon as its headers arrive, sized from its Content-Length. A request the queue cannot take gets
// 503 MHE_QUEUE_FULL + Retry-After at once, with Connection: close, and its body is never parsed: parsing ~300 KB
// of JSON only to refuse it is how overload used to collapse goodput (receive livelock; bench/README.md, goodput).
// A request that got room keeps it until its route submits (Batcher.submit `reserved`): admitted, it cannot starve.

import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { errors } from '../../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Hold queue room for the request before reading its body (plugins/admission.ts). */
    admission?: boolean
  }
  interface FastifyInstance {
    admission: Admission
  }
}

/** The batcher's side of it (Batcher.reserve and release). */
interface Room {
  reserve(size: number): boolean
  release(size: number): void
}

interface Held {
  batcher: Room
  size: number
}

/** JSON bytes per feature value before any request taught us better ("-0.0123456," is 11). */
const INITIAL_JSON_BYTES_PER_VALUE = 10
/** Weight of the newest request in the running mean of JSON bytes per instance. */
const LEARN_RATE = 0.1

export class Admission {
  private readonly held = new WeakMap<FastifyRequest, Held>()
  /** Running mean of JSON body bytes per instance, per feature dimension (one model served at a time). */
  private jsonBytesPerValue = INITIAL_JSON_BYTES_PER_VALUE

  constructor(private readonly maxSize: number) {}

  /** Instances a request probably carries, from its headers: exact for raw float32, learned for JSON, else 1. */
  estimate(request: FastifyRequest, featureDim: number): number {
    const length = Number(request.headers['content-length'])
    if (!Number.isFinite(length) || length <= 0) return 1
    const type = request.headers['content-type'] ?? ''
    const perInstance = type.startsWith('application/octet-stream') ? 4 * featureDim : this.jsonBytesPerValue * featureDim
    return Math.min(this.maxSize, Math.max(1, Math.round(length / perInstance)))
  }

  /** Holds room for the request; false when the queue cannot take it. */
  hold(request: FastifyRequest, batcher: Room, featureDim: number): boolean {
    const size = this.estimate(request, featureDim)
    if (!batcher.reserve(size)) return false
    this.held.set(request, { batcher, size })
    return true
  }

  /**
   * The room held for the request, handed to `batcher.submit` as `reserved` (undefined when none was held, e.g. on a
   * route without admission); `instances` is what the body turned out to carry, to estimate JSON bodies better.
   */
  take(request: FastifyRequest, batcher: Room, instances: number, featureDim: number): number | undefined {
    const h = this.held.get(request)
    if (!h) return undefined
    this.held.delete(request)
    const length = Number(request.headers['content-length'])
    if (instances > 0 && Number.isFinite(length) && !(request.headers['content-type'] ?? '').startsWith('application/octet-stream')) {
      this.jsonBytesPerValue += LEARN_RATE * (length / (instances * featureDim) - this.jsonBytesPerValue)
    }
    if (h.batcher !== batcher) {
      h.batcher.release(h.size)
      return undefined
    }
    return h.size
  }

  /** Gives back room the request still holds (it failed or left before its route submitted). */
  release(request: FastifyRequest): void {
    const h = this.held.get(request)
    if (!h) return
    this.held.delete(request)
    h.batcher.release(h.size)
  }
}

export default fp(
  async function admission(app) {
    const admission = new Admission(Math.min(app.config.maxQueue, app.config.maxInstances))
    app.decorate('admission', admission)
    app.addHook('onRequest', (request, reply, done) => {
      const loaded = request.routeOptions.config.admission === true ? app.mhe.loaded : undefined
      if (!loaded || admission.hold(request, loaded.batcher, loaded.manifest.featureDim)) return done()
      // Close rather than read a body we will not use; the client retries after Retry-After on a fresh connection.
      reply.header('connection', 'close')
      done(errors.queueFull())
    })
    const release = (request: FastifyRequest, _reply: unknown, done: () => void): void => {
      admission.release(request)
      done()
    }
    app.addHook('onResponse', release)
    app.addHook('onRequestAbort', (request, done) => release(request, undefined, done))
  },
  { name: 'mhe-admission', dependencies: ['mhe-errors', 'mhe-service'], decorators: { fastify: ['config', 'mhe'] } },
)
