// Dynamic batcher: queues requests (counted in instances) and hands them to a "run this batch" function, at most
// maxBatch instances at a time, after at most maxDelayMs. Knows nothing of HTTP or tfjs. This file schedules: when a
// batch starts, one at a time, close and drain. Admission, the queue and settlement are the batch-*.ts beside it.

import { refusal } from './batch-admission.js'
import { CancelledError, DeadlineExceededError } from './batch-errors.js'
import { BatchQueue, type Batch } from './batch-queue.js'
import { Deadlines } from './batch-deadlines.js'
import { checkOutcome, settleBatch, Waiter, type AbortLike, type BatchOutcome } from './batch-settlement.js'
import { systemClock, type Clock } from './clock.js'

export { systemClock, type Clock } from './clock.js'
export type { AbortLike } from './batch-settlement.js'
export { BatchFailedError, BatcherClosedError, CancelledError, DeadlineExceededError, QueueFullError } from './batch-errors.js'

/** Metrics callback. A hook that throws is ignored: metrics must not break settlement. */
export interface BatcherHooks {
  onBatch?(info: { size: number; waitMs: number[]; computeMs: number; error?: unknown }): void
}

export interface BatcherOptions {
  maxBatch: number
  maxDelayMs: number
  maxQueue: number
  clock?: Clock
  hooks?: BatcherHooks
}

export interface SubmitOptions {
  /** Aborting it (client left) drops the request's queued instances and rejects with CancelledError. */
  signal?: AbortLike
  /** Absolute time on the batcher's clock; past it the request rejects with DeadlineExceededError. */
  deadline?: number
  /** Instances held for this request by reserve(): released now, and the request is queued even if over maxQueue. */
  reserved?: number
}

export class Batcher<I, O> {
  private readonly run: (items: I[]) => Promise<O[]>
  private readonly maxBatch: number
  private readonly maxDelayMs: number
  private readonly maxQueue: number
  private readonly clock: Clock
  private readonly hooks: BatcherHooks
  private readonly queue = new BatchQueue<I, O>()
  /** The batch the run function is working on: one at a time. */
  private inFlight: Batch<I, O> | undefined
  private closed = false
  /** Instances held by reserve() for requests whose bodies are still being read. */
  private reservedCount = 0
  private timer: unknown = undefined
  private timerDue = 0
  private idleWaiters: (() => void)[] = []
  private readonly roomListeners: (() => void)[] = []
  private readonly deadlines: Deadlines<Waiter<I, O>>

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
    this.deadlines = new Deadlines(this.clock, (waiter) => {
      waiter.fail(new DeadlineExceededError('the request deadline passed before it finished'))
      this.pump()
    })
  }

  /** Instances waiting (not yet in a running batch). */
  get depth(): number {
    return this.queue.depth
  }

  /** Instances held by reserve() and not yet submitted or released. */
  get reserved(): number {
    return this.reservedCount
  }

  /**
   * Holds room for a request of about `size` instances before its body is read and parsed, so that a request the
   * queue cannot take is refused while refusing is still cheap (receive livelock otherwise: the server would spend
   * its CPU parsing bodies it then refuses). False when the queue (with what is held) has no room, or is closed.
   * The holder passes `reserved: size` to submit, or calls release(size) if it never submits.
   */
  reserve(size: number): boolean {
    if (this.closed || this.queue.depth + this.reservedCount + size > this.maxQueue) return false
    this.reservedCount += size
    return true
  }

  release(size: number): void {
    this.reservedCount = Math.max(0, this.reservedCount - size)
    this.notifyRoom()
  }

  /** Called whenever room may have come free (a batch left the queue, held room was given back) or the batcher closed. */
  onRoom(listener: () => void): void {
    this.roomListeners.push(listener)
  }

  /** Closed: takes no new work (reserve fails for good). */
  get isClosed(): boolean {
    return this.closed
  }

  /** Batches in flight (0 or 1: the engine runs one batch at a time). */
  get running(): number {
    return this.inFlight ? 1 : 0
  }

  /**
   * Queues the items as one unit; resolves with one output per item, in order. Never blocks: a full queue,
   * a closed batcher, an aborted signal or a passed deadline reject at once and queue nothing.
   */
  submit(items: readonly I[], opts: SubmitOptions = {}): Promise<O[]> {
    const { signal, deadline, reserved } = opts
    const now = this.clock.now()
    if (reserved !== undefined) this.release(reserved)
    const refused = refusal(
      { size: items.length, aborted: signal?.aborted ?? false, deadline, admitted: reserved !== undefined },
      { closed: this.closed, queued: this.queue.depth + this.reservedCount, maxQueue: this.maxQueue, now },
    )
    if (refused) return Promise.reject(refused)
    if (items.length === 0) return Promise.resolve([])
    return new Promise<O[]>((resolve, reject) => {
      const waiter = new Waiter<I, O>(items, now, deadline, signal, resolve, reject)
      this.watch(waiter)
      this.queue.push(waiter)
      this.pump()
    })
  }

  /** Stops accepting work; what is queued still runs, without waiting for company. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.deadlines.close()
    this.pump()
    this.notifyRoom()
  }

  /** Resolves when nothing is queued or running. */
  drain(): Promise<void> {
    if (!this.queue.head && !this.inFlight) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Rejects the request as soon as its client leaves or its deadline passes, even while a part of it runs. */
  private watch(waiter: Waiter<I, O>): void {
    const { signal, deadline } = waiter
    if (signal) {
      const onAbort = (): void => {
        waiter.fail(new CancelledError('the request was cancelled before it finished'))
        this.pump()
      }
      signal.addEventListener('abort', onAbort, { once: true })
      waiter.onSettle(() => signal.removeEventListener('abort', onAbort))
    }
    if (deadline !== undefined) {
      this.deadlines.watch(waiter as Waiter<I, O> & { deadline: number })
      waiter.onSettle(() => this.deadlines.forget(waiter))
    }
  }

  /** Starts a batch if one is due, else arms the timer for the head's delay. `firedDue`: the timer that fired. */
  private pump(firedDue?: number): void {
    if (this.inFlight) {
      this.clearTimer() // re-evaluated when the running batch finishes
      return
    }
    const head = this.queue.head
    if (!head) {
      this.clearTimer()
      this.notifyIdle()
      return
    }
    // The delay runs from the first instance of the coming batch, i.e. when the head request was queued.
    const due = head.queuedAt + this.maxDelayMs
    if (this.queue.depth >= this.maxBatch || this.closed || firedDue === due) {
      this.clearTimer()
      this.startBatch()
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
    }, Math.max(0, due - this.clock.now()))
  }

  private clearTimer(): void {
    if (this.timer === undefined) return
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private startBatch(): void {
    const batch = this.queue.cut(this.maxBatch, this.clock.now())
    if (batch.items.length === 0) {
      this.pump() // everything was stale; the queue is empty now
      return
    }
    this.inFlight = batch
    this.notifyRoom() // its instances left the queue
    let result: Promise<O[]>
    try {
      result = Promise.resolve(this.run(batch.items))
    } catch (err) {
      result = Promise.reject(err)
    }
    result.then(
      (returned) => this.complete(batch, { returned }),
      (thrown: unknown) => this.complete(batch, { thrown }),
    )
  }

  private complete(batch: Batch<I, O>, outcome: BatchOutcome): void {
    const size = batch.items.length
    const computeMs = this.clock.now() - batch.startedAt
    const result = checkOutcome<O>(outcome, size)
    this.inFlight = undefined
    try {
      const info = { size, waitMs: batch.waitMs, computeMs }
      this.hooks.onBatch?.('error' in result ? { ...info, error: result.error } : info)
    } catch {
      // metrics only
    }
    settleBatch(batch.segments, result)
    this.pump()
  }

  private notifyRoom(): void {
    for (const listener of this.roomListeners) listener()
  }

  private notifyIdle(): void {
    if (this.queue.head || this.inFlight || this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }
}
