// Refusal before the body: on routes that opt in (`config: { admission: true }`), room in the batch queue is held
// for a request as soon as its headers arrive, sized from its Content-Length. A request the queue cannot take gets
// 503 MHE_QUEUE_FULL + Retry-After at once, with Connection: close, and its body is never parsed: parsing ~300 KB
// of JSON only to refuse it is how overload used to collapse goodput (receive livelock; bench/README.md, goodput).
// A request that got room keeps it until its route submits (Batcher.submit `reserved`): admitted, it cannot starve.
// A request that finds no room first waits up to MHE_ADMISSION_WAIT_MS for it, its body unread, in arrival order: under
// overload, clients that retry a 503 at once (ignoring Retry-After) otherwise cycle thousands of refusals a second,
// whose connections and lingering closes take the CPU the admitted requests need (bench/README.md, session 7).

import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
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

/** The batcher's side of it (Batcher.reserve, release, onRoom, isClosed). */
interface Room {
  reserve(size: number): boolean
  release(size: number): void
  onRoom(listener: () => void): void
  readonly isClosed: boolean
}

/** A request waiting for room; `admit` lets it go on (with room held, or none once the batcher closed). */
interface Waiting {
  request: FastifyRequest
  size: number
  admit: () => void
}

/** The requests waiting for room in one batcher, first come first admitted. */
class WaitList {
  private readonly waiting: Waiting[] = []
  private scheduled = false

  constructor(
    private readonly batcher: Room,
    private readonly held: WeakMap<FastifyRequest, Held>,
  ) {
    // Admitted in a microtask: the batcher calls this from inside its own bookkeeping.
    batcher.onRoom(() => {
      if (this.scheduled || this.waiting.length === 0) return
      this.scheduled = true
      queueMicrotask(() => {
        this.scheduled = false
        this.admit()
      })
    })
  }

  get length(): number {
    return this.waiting.length
  }

  /** Waits for room for `request` (size instances) up to `ms`, then refuses it; one that leaves is dropped. */
  wait(request: FastifyRequest, reply: FastifyReply, size: number, ms: number, done: (err?: Error) => void): void {
    let settled = false
    const settle = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reply.raw.off('close', leave)
      const i = this.waiting.indexOf(entry)
      if (i >= 0) this.waiting.splice(i, 1)
      done(err)
    }
    const refuse = () => {
      reply.header('connection', 'close')
      settle(errors.queueFull())
    }
    const entry: Waiting = { request, size, admit: () => settle() }
    const timer = setTimeout(refuse, ms)
    const leave = () => settle(errors.clientClosed())
    reply.raw.once('close', leave)
    this.waiting.push(entry)
    // Every arrival also lets in what fits: room that came free while no one was waiting sends no notice.
    this.admit()
  }

  /** Lets waiting requests in, oldest first, while the batcher has room; all of them once it closed (a swap, a drain). */
  admit(): void {
    while (this.waiting.length > 0) {
      const w = this.waiting[0]!
      if (this.batcher.isClosed) {
        w.admit() // no room held: the route leases the version now serving and is checked at submit
        continue
      }
      if (!this.batcher.reserve(w.size)) return
      this.held.set(w.request, { batcher: this.batcher, size: w.size })
      w.admit()
    }
  }
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
  private readonly lists = new WeakMap<Room, WaitList>()
  /** Running mean of JSON body bytes per instance, per feature dimension (one model served at a time). */
  private jsonBytesPerValue = INITIAL_JSON_BYTES_PER_VALUE

  constructor(
    private readonly maxSize: number,
    /** How long a request without room waits for it (MHE_ADMISSION_WAIT_MS). */
    private readonly waitMs: number,
  ) {}

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
   * Holds room for the request, at once or once some comes free within waitMs (behind the requests already waiting),
   * then calls done(); without room by then, done(503 MHE_QUEUE_FULL) with Connection: close.
   */
  admit(request: FastifyRequest, reply: FastifyReply, batcher: Room, featureDim: number, done: (err?: Error) => void): void {
    let list = this.lists.get(batcher)
    if ((list === undefined || list.length === 0) && this.hold(request, batcher, featureDim)) return done()
    if (this.waitMs === 0 || batcher.isClosed) {
      reply.header('connection', 'close')
      return done(errors.queueFull())
    }
    if (list === undefined) {
      list = new WaitList(batcher, this.held)
      this.lists.set(batcher, list)
    }
    list.wait(request, reply, this.estimate(request, featureDim), this.waitMs, done)
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
    const admission = new Admission(Math.min(app.config.maxQueue, app.config.maxInstances), app.config.admissionWaitMs)
    app.decorate('admission', admission)
    app.addHook('onRequest', (request, reply, done) => {
      // The version the route will most likely submit to (a swap in between only costs the hold: take() releases it).
      const { name } = request.params as { name?: string }
      const version = Number((request.query as { version?: unknown }).version)
      const loaded = request.routeOptions.config.admission === true ? app.mhe.models.peek(name, Number.isSafeInteger(version) ? version : undefined)?.loaded : undefined
      if (!loaded) return done()
      // A refusal closes rather than read a body we will not use; the client retries after Retry-After on a fresh
      // connection.
      admission.admit(request, reply, loaded.batcher, loaded.manifest.featureDim, done)
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
