// Dynamic batcher: queues requests (counted in instances) and hands them to a "run this batch" function,
// at most maxBatch instances at a time, after at most maxDelayMs. Knows nothing of HTTP or tfjs.

/** Time source; injectable so tests drive time by hand. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Default clock: monotonic milliseconds (performance.now), so a deadline is `systemClock.now() + timeoutMs`. */
export const systemClock: Clock = {
  now: () => performance.now(),
  // 0 ms means the next turn of the event loop, after the I/O already received (Node's setTimeout(fn, 0) waits 1 ms).
  setTimeout: (fn, ms) => (ms > 0 ? setTimeout(fn, ms) : { immediate: setImmediate(fn) }),
  clearTimeout: (handle) => {
    const h = handle as ReturnType<typeof setTimeout> | { immediate: ReturnType<typeof setImmediate> }
    if ('immediate' in h) clearImmediate(h.immediate)
    else clearTimeout(h)
  },
}

/** A clock that only moves when told to; timers fire in due order inside advance(). For tests. */
export class ManualClock implements Clock {
  private t: number
  private seq = 0
  private readonly timers = new Map<number, { at: number; fn: () => void }>()

  constructor(start = 0) {
    this.t = start
  }

  now(): number {
    return this.t
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number)
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.size
  }

  /** Moves time forward by ms, firing every timer that falls due, earliest (then oldest) first. */
  advance(ms: number): void {
    const end = this.t + ms
    for (;;) {
      let bestId = -1
      let bestAt = Infinity
      // Map keeps insertion order, so ids ascend: strict < keeps the oldest of equal due times.
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && timer.at < bestAt) {
          bestId = id
          bestAt = timer.at
        }
      }
      const timer = this.timers.get(bestId)
      if (!timer) break
      this.timers.delete(bestId)
      this.t = Math.max(this.t, bestAt)
      timer.fn()
    }
    this.t = end
  }
}

export type RejectReason = 'queue_full' | 'closed' | 'deadline' | 'cancelled'

/** Metrics callbacks. A hook that throws is ignored: metrics must not break settlement. */
export interface BatcherHooks {
  onBatch?(info: { size: number; waitMs: number[]; computeMs: number; error?: unknown }): void
  onReject?(reason: RejectReason): void
}

export interface BatcherOptions {
  maxBatch: number
  maxDelayMs: number
  maxQueue: number
  clock?: Clock
  hooks?: BatcherHooks
}

/** What submit needs of a cancellation signal: an AbortSignal, or anything cheaper with these three members. */
export interface AbortLike {
  readonly aborted: boolean
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

export interface SubmitOptions {
  /** Aborting it (client left) drops the request's queued instances and rejects with CancelledError. */
  signal?: AbortLike
  /** Absolute time on the batcher's clock; past it the request rejects with DeadlineExceededError. */
  deadline?: number
}

export class QueueFullError extends Error {
  override name = 'QueueFullError'
}
export class BatcherClosedError extends Error {
  override name = 'BatcherClosedError'
}
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError'
}
export class CancelledError extends Error {
  override name = 'CancelledError'
}
/** The run function threw, rejected or returned the wrong number of outputs; `cause` keeps what it threw. */
export class BatchFailedError extends Error {
  override name = 'BatchFailedError'
}

interface Pending<I, O> {
  readonly items: readonly I[]
  readonly outputs: O[]
  readonly queuedAt: number
  readonly deadline: number | undefined
  readonly signal: AbortLike | undefined
  readonly resolve: (out: O[]) => void
  readonly reject: (err: unknown) => void
  taken: number // instances already handed to a batch
  done: number // outputs received
  settled: boolean
  onAbort?: () => void
  deadlineTimer?: unknown
}

interface Segment<I, O> {
  readonly req: Pending<I, O>
  readonly start: number
  readonly count: number
}

export class Batcher<I, O> {
  private readonly run: (items: I[]) => Promise<O[]>
  private readonly maxBatch: number
  private readonly maxDelayMs: number
  private readonly maxQueue: number
  private readonly clock: Clock
  private readonly hooks: BatcherHooks
  /** Requests with instances not yet in a batch, oldest first. */
  private readonly queue: Pending<I, O>[] = []
  private queued = 0
  private inFlight = 0
  private closed = false
  private timer: unknown = undefined
  private timerDue = 0
  private idleWaiters: (() => void)[] = []

  constructor(run: (items: I[]) => Promise<O[]>, opts: BatcherOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) {
      throw new RangeError(`maxBatch must be an integer >= 1, got ${opts.maxBatch}`)
    }
    if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 1) {
      throw new RangeError(`maxQueue must be an integer >= 1, got ${opts.maxQueue}`)
    }
    if (!Number.isFinite(opts.maxDelayMs) || opts.maxDelayMs < 0) {
      throw new RangeError(`maxDelayMs must be a finite number >= 0, got ${opts.maxDelayMs}`)
    }
    this.run = run
    this.maxBatch = opts.maxBatch
    this.maxDelayMs = opts.maxDelayMs
    this.maxQueue = opts.maxQueue
    this.clock = opts.clock ?? systemClock
    this.hooks = opts.hooks ?? {}
  }

  /** Instances waiting (not yet in a running batch). */
  get depth(): number {
    return this.queued
  }

  /** Batches in flight (0 or 1: the engine runs one batch at a time). */
  get running(): number {
    return this.inFlight
  }

  /**
   * Queues the items as one unit; resolves with one output per item, in order. Never blocks: a full queue,
   * a closed batcher, an aborted signal or a passed deadline reject at once and queue nothing.
   */
  submit(items: readonly I[], opts: SubmitOptions = {}): Promise<O[]> {
    const { signal, deadline } = opts
    if (this.closed) return this.refuse('closed', new BatcherClosedError('the batcher is closed and accepts no new work'))
    if (signal?.aborted) return this.refuse('cancelled', new CancelledError('the request was cancelled before it was queued'))
    const now = this.clock.now()
    if (deadline !== undefined && now >= deadline) {
      return this.refuse('deadline', new DeadlineExceededError('the request deadline passed before it was queued'))
    }
    const n = items.length
    if (n === 0) return Promise.resolve([])
    if (n > this.maxQueue) {
      return this.refuse(
        'queue_full',
        new QueueFullError(`a request of ${n} instances can never fit a queue of at most ${this.maxQueue} instances`),
      )
    }
    if (this.queued + n > this.maxQueue) {
      return this.refuse(
        'queue_full',
        new QueueFullError(`the queue holds ${this.queued} of at most ${this.maxQueue} instances, no room for ${n} more`),
      )
    }
    return new Promise<O[]>((resolve, reject) => {
      const req: Pending<I, O> = {
        items,
        outputs: new Array<O>(n),
        queuedAt: now,
        deadline,
        signal,
        resolve,
        reject,
        taken: 0,
        done: 0,
        settled: false,
      }
      if (signal) {
        req.onAbort = () => {
          this.fail(req, new CancelledError('the request was cancelled before it finished'), 'cancelled')
          this.pump()
        }
        signal.addEventListener('abort', req.onAbort, { once: true })
      }
      if (deadline !== undefined) {
        // Fires even while the request's part is running, so a caller never waits past its deadline.
        req.deadlineTimer = this.clock.setTimeout(() => {
          req.deadlineTimer = undefined
          this.fail(req, new DeadlineExceededError('the request deadline passed before it finished'), 'deadline')
          this.pump()
        }, deadline - now)
      }
      this.queue.push(req)
      this.queued += n
      this.pump()
    })
  }

  /** Stops accepting work; what is queued still runs, without waiting for company. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.pump()
  }

  /** Resolves when nothing is queued or running. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private refuse(reason: RejectReason, err: Error): Promise<never> {
    this.emitReject(reason)
    return Promise.reject(err)
  }

  /** Starts a batch if one is due, else arms the timer for the head's delay. `firedDue`: the timer that fired. */
  private pump(firedDue?: number): void {
    if (this.inFlight > 0) {
      this.clearTimer() // re-evaluated when the running batch finishes
      return
    }
    const head = this.queue[0]
    if (!head) {
      this.clearTimer()
      this.notifyIdle()
      return
    }
    const now = this.clock.now()
    // The delay runs from the first instance of the coming batch, i.e. when the head request was queued.
    const due = head.queuedAt + this.maxDelayMs
    if (this.queued >= this.maxBatch || this.closed || firedDue === due) {
      this.clearTimer()
      this.startBatch(now)
      return
    }
    if (this.timer !== undefined && this.timerDue === due) return
    this.clearTimer()
    this.timerDue = due
    // Even when due, the batch waits one event-loop turn (a 0 ms timer): requests already received, which the loop has
    // not read yet, join it. Under load that alone makes batches of tens without delaying anyone (bench/README.md).
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.pump(due)
    }, Math.max(0, due - now))
  }

  private clearTimer(): void {
    if (this.timer === undefined) return
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private startBatch(now: number): void {
    const batch: I[] = []
    const waitMs: number[] = []
    const segments: Segment<I, O>[] = []
    while (batch.length < this.maxBatch) {
      const req = this.queue[0]
      if (!req) break
      // Guards for a clock that jumped past a deadline before its timer ran; aborts are normally handled by the listener.
      if (req.signal?.aborted) {
        this.fail(req, new CancelledError('the request was cancelled before its batch ran'), 'cancelled')
        continue
      }
      if (req.deadline !== undefined && now >= req.deadline) {
        this.fail(req, new DeadlineExceededError('the request deadline passed before its batch ran'), 'deadline')
        continue
      }
      const count = Math.min(this.maxBatch - batch.length, req.items.length - req.taken)
      segments.push({ req, start: req.taken, count })
      for (let k = req.taken; k < req.taken + count; k++) {
        batch.push(req.items[k] as I)
        waitMs.push(now - req.queuedAt)
      }
      req.taken += count
      this.queued -= count
      if (req.taken === req.items.length) this.queue.shift()
    }
    if (batch.length === 0) {
      this.pump() // everything was stale; the queue is empty now
      return
    }
    this.inFlight++
    let result: Promise<O[]>
    try {
      result = Promise.resolve(this.run(batch))
    } catch (err) {
      result = Promise.reject(err)
    }
    const size = batch.length
    result.then(
      (out) => this.complete(segments, size, waitMs, now, out, false, undefined),
      (err: unknown) => this.complete(segments, size, waitMs, now, undefined, true, err),
    )
  }

  private complete(
    segments: Segment<I, O>[],
    size: number,
    waitMs: number[],
    startedAt: number,
    out: O[] | undefined,
    threw: boolean,
    thrown: unknown,
  ): void {
    const computeMs = this.clock.now() - startedAt
    let error: BatchFailedError | undefined
    if (threw) {
      error = new BatchFailedError('the batch function failed', { cause: thrown })
    } else if (!Array.isArray(out) || out.length !== size) {
      const got = Array.isArray(out) ? `${out.length} outputs` : `a ${out === null ? 'null' : typeof out}`
      error = new BatchFailedError(`the batch function returned ${got} for ${size} inputs`, { cause: out })
    }
    this.inFlight--
    try {
      this.hooks.onBatch?.(error ? { size, waitMs, computeMs, error } : { size, waitMs, computeMs })
    } catch {
      // metrics only
    }
    let offset = 0
    for (const { req, start, count } of segments) {
      if (error) {
        this.fail(req, error) // also drops the request's parts still queued
      } else if (!req.settled && out) {
        for (let j = 0; j < count; j++) req.outputs[start + j] = out[offset + j] as O
        req.done += count
        if (req.done === req.items.length) {
          this.settle(req)
          req.resolve(req.outputs)
        }
      }
      offset += count
    }
    this.pump()
  }

  /** Rejects a request once and removes what it still has queued. The caller pumps. */
  private fail(req: Pending<I, O>, err: unknown, reason?: RejectReason): void {
    if (req.settled) return
    this.settle(req)
    if (reason) this.emitReject(reason)
    req.reject(err)
  }

  private settle(req: Pending<I, O>): void {
    req.settled = true
    if (req.onAbort) req.signal?.removeEventListener('abort', req.onAbort)
    if (req.deadlineTimer !== undefined) {
      this.clock.clearTimeout(req.deadlineTimer)
      req.deadlineTimer = undefined
    }
    const i = this.queue.indexOf(req)
    if (i >= 0) {
      this.queue.splice(i, 1)
      this.queued -= req.items.length - req.taken
    }
  }

  private emitReject(reason: RejectReason): void {
    try {
      this.hooks.onReject?.(reason)
    } catch {
      // metrics only
    }
  }

  private notifyIdle(): void {
    if (this.queue.length > 0 || this.inFlight > 0 || this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }
}
