// A clock that only moves when told to, for the batcher's tests: timers fire in due order inside advance().
import type { Clock } from '../../src/serving/clock.js'

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
