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
  // A body with at most `max` brackets and braces in all cannot nest deeper. Counted with indexOf (native memchr),
  // this settles the common small body without the byte loop: 0.3 instead of 17 µs for one 768-value instance.
  if (countOf(bytes, OPEN_ARRAY, max) + countOf(bytes, OPEN_OBJECT, max) <= max) return false
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

/** Occurrences of `byte` in `bytes`, up to `limit` + 1 (counting stops there). */
function countOf(bytes: Uint8Array, byte: number, limit: number): number {
  let count = 0
  for (let at = bytes.indexOf(byte); at >= 0 && count <= limit; at = bytes.indexOf(byte, at + 1)) count++
  return count
}
