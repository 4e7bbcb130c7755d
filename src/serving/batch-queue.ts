// The queue: requests with instances not yet in a batch, oldest first, counted in instances. The next batch is cut
// from its head, a request split across batches when it does not fit.

import { CancelledError, DeadlineExceededError } from './batch-errors.js'
import type { Segment, Waiter } from './batch-settlement.js'

/** A batch on its way to the run function. */
export interface Batch<I, O> {
  readonly items: I[]
  /** Per item: how long it waited in the queue (ms). */
  readonly waitMs: number[]
  readonly segments: Segment<I, O>[]
  readonly startedAt: number
}

export class BatchQueue<I, O> {
  private readonly waiters: Waiter<I, O>[] = []
  private queued = 0

  /** Instances waiting. */
  get depth(): number {
    return this.queued
  }

  /** The oldest request with instances waiting. */
  get head(): Waiter<I, O> | undefined {
    return this.waiters[0]
  }

  /** Queues all of the request's items; it leaves the queue, with whatever it still has here, when it settles. */
  push(w: Waiter<I, O>): void {
    this.waiters.push(w)
    this.queued += w.items.length
    w.onSettle(() => this.remove(w))
  }

  /**
   * Takes up to maxBatch instances from the head. A request cancelled or past its deadline is failed and skipped
   * instead (its listener or timer normally got it first; this covers a clock that jumped past a deadline).
   */
  cut(maxBatch: number, now: number): Batch<I, O> {
    const batch: Batch<I, O> = { items: [], waitMs: [], segments: [], startedAt: now }
    while (batch.items.length < maxBatch) {
      const w = this.waiters[0]
      if (!w) break
      if (w.signal?.aborted) {
        w.fail(new CancelledError('the request was cancelled before its batch ran')) // leaves the queue
        continue
      }
      if (w.deadline !== undefined && now >= w.deadline) {
        w.fail(new DeadlineExceededError('the request deadline passed before its batch ran'))
        continue
      }
      const count = Math.min(maxBatch - batch.items.length, w.items.length - w.taken)
      batch.segments.push({ waiter: w, start: w.taken, count })
      for (let k = w.taken; k < w.taken + count; k++) {
        batch.items.push(w.items[k] as I)
        batch.waitMs.push(now - w.queuedAt)
      }
      w.taken += count
      this.queued -= count
      if (w.taken === w.items.length) this.waiters.shift()
    }
    return batch
  }

  private remove(w: Waiter<I, O>): void {
    const i = this.waiters.indexOf(w)
    if (i < 0) return
    this.waiters.splice(i, 1)
    this.queued -= w.items.length - w.taken
  }
}
