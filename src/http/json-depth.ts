// A bound on JSON nesting checked on the bytes, before JSON.parse: a body of millions of `[` would otherwise be built
// in full (seconds of a blocked event loop, a GB of memory) before the schema refuses it. One pass, no allocation.

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const OPEN_OBJECT = 0x7b
const CLOSE_ARRAY = 0x5d
const CLOSE_OBJECT = 0x7d

/** True when `bytes`, read as JSON, opens more than `max` arrays and objects inside each other (strings skipped). */
export function nestsDeeperThan(bytes: Uint8Array, max: number): boolean {
  let depth = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const s = bytes[i]!
        if (s === BACKSLASH) i++
        else if (s === QUOTE) break
      }
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return false
}
