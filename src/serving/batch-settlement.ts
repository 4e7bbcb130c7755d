// Settlement: every request is settled exactly once, resolved with all its outputs in order or rejected, whatever the
// batch function does (throws, rejects, returns the wrong number of outputs) and whenever the request is cancelled or
// expires, also while one of its parts is running.

import { BatchFailedError } from './batch-errors.js'

/** What a request needs of a cancellation signal: an AbortSignal, or anything cheaper with these three members. */
export interface AbortLike {
  readonly aborted: boolean
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

/** One submitted request: its items, the outputs gathered so far, and its promise, settled once. */
export class Waiter<I, O> {
  /** Items already handed to a batch. */
  taken = 0
  private readonly outputs: O[]
  private received = 0
  private done = false
  private readonly cleanups: (() => void)[] = []

  constructor(
    readonly items: readonly I[],
    readonly queuedAt: number,
    readonly deadline: number | undefined,
    readonly signal: AbortLike | undefined,
    private readonly resolve: (out: O[]) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.outputs = new Array<O>(items.length)
  }

  get settled(): boolean {
    return this.done
  }

  /** Runs `fn` when the request settles: what was set up for it (listener, timer, queue place) is undone. */
  onSettle(fn: () => void): void {
    this.cleanups.push(fn)
  }

  /** Stores the outputs of items [start, start + count), read from out[from...]; resolves once all have arrived. */
  fill(start: number, count: number, out: readonly O[], from: number): void {
    if (this.done) return
    for (let j = 0; j < count; j++) this.outputs[start + j] = out[from + j] as O
    this.received += count
    if (this.received === this.items.length) {
      this.finish()
      this.resolve(this.outputs)
    }
  }

  /** Rejects, unless already settled. */
  fail(err: unknown): void {
    if (this.done) return
    this.finish()
    this.reject(err)
  }

  private finish(): void {
    this.done = true
    for (const fn of this.cleanups) fn()
  }
}

/** A run of one request's items inside a batch: items [start, start + count) of the request. */
export interface Segment<I, O> {
  readonly waiter: Waiter<I, O>
  readonly start: number
  readonly count: number
}

/** What the batch function did: returned something (not yet checked) or threw / rejected. */
export type BatchOutcome = { returned: unknown } | { thrown: unknown }

/** A batch's result for its requests: one output per item, or the error they all get. */
export type BatchResult<O> = { outputs: O[] } | { error: BatchFailedError }

/** Checks the outcome of a batch of `size` items: anything but `size` outputs fails the whole batch. */
export function checkOutcome<O>(outcome: BatchOutcome, size: number): BatchResult<O> {
  if ('thrown' in outcome) return { error: new BatchFailedError('the batch function failed', { cause: outcome.thrown }) }
  const out = outcome.returned
  if (Array.isArray(out) && out.length === size) return { outputs: out as O[] }
  const got = Array.isArray(out) ? `${out.length} outputs` : `a ${out === null ? 'null' : typeof out}`
  return { error: new BatchFailedError(`the batch function returned ${got} for ${size} inputs`, { cause: out }) }
}

/** Hands each request its slice of the batch's outputs, or the batch's error (which also drops its queued parts). */
export function settleBatch<I, O>(segments: readonly Segment<I, O>[], result: BatchResult<O>): void {
  let offset = 0
  for (const { waiter, start, count } of segments) {
    if ('error' in result) waiter.fail(result.error)
    else waiter.fill(start, count, result.outputs, offset)
    offset += count
  }
}
