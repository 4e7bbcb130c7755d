// The deadlines of a batcher's requests on one timer. A timer per request cost ~4 µs of a lone request's ~270 (its
// insertion into and removal from Node's timer lists, in the profile at c=1; bench/README.md, session 8). Here the
// timer is armed for the earliest deadline and left armed when requests settle before it; when it fires, it expires
// the requests past due and re-arms for the next deadline, or stops when no request is left.

import type { Clock } from './clock.js'

/** A request with a deadline, as the batcher's waiters are. */
export interface Expiring {
  readonly deadline: number | undefined
}

export class Deadlines<W extends Expiring> {
  private readonly live = new Set<W>()
  private timer: unknown = undefined
  private due = Infinity
  private closing = false

  constructor(
    private readonly clock: Clock,
    /** Called once for a request whose deadline passed while it was watched. */
    private readonly expire: (w: W) => void,
  ) {}

  /** Watches `w` (it has a deadline) until forget(w) or its deadline. */
  watch(w: W & { deadline: number }): void {
    this.live.add(w)
    if (w.deadline < this.due) this.arm(w.deadline)
  }

  forget(w: W): void {
    this.live.delete(w)
    if (this.closing && this.live.size === 0) this.stop()
  }

  /** No new requests will come: the timer goes as soon as no request is left (it must not hold the process open). */
  close(): void {
    this.closing = true
    if (this.live.size === 0) this.stop()
  }

  private arm(due: number): void {
    this.stop()
    this.due = due
    this.timer = this.clock.setTimeout(() => this.fire(), due - this.clock.now())
    // Left armed past the last request, it must not hold the process open (a request that waits holds its socket).
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  private stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.due = Infinity
  }

  private fire(): void {
    this.timer = undefined
    this.due = Infinity
    const now = this.clock.now()
    let next = Infinity
    for (const w of this.live) {
      const deadline = w.deadline!
      if (deadline > now) {
        next = Math.min(next, deadline)
        continue
      }
      this.live.delete(w)
      this.expire(w)
    }
    // Anything the expiries watched anew armed the timer already; otherwise it goes to the earliest left.
    if (next < this.due) this.arm(next)
  }
}
