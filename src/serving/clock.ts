// Time for the batcher, injectable so tests drive it by hand (test/helpers/manual-clock.ts) and need no real time.

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
