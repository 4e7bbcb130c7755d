// Bounds checked on the bytes of a JSON body, before JSON.parse: its nesting (a body of millions of `[` would otherwise
// be built in full: seconds of a blocked event loop, a GB of memory, before the schema refuses it) and the heap its
// parse would take (16 MiB of `{},` parse to ~300 MB of objects). Both from one pass (scanJson), no allocation.

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const OPEN_OBJECT = 0x7b
const CLOSE_ARRAY = 0x5d
const CLOSE_OBJECT = 0x7d
const COMMA = 0x2c

/** Heap bytes per byte of JSON text held while parsing it: the text as a one-byte string, and room to spare. */
const TEXT_COST = 2
/** Per value in an array or object: its 8-byte slot (numbers in arrays are stored unboxed). */
const VALUE_COST = 8
/** Per array or object: its header and backing store (an empty object takes ~56 bytes, an empty array ~32). */
const CONTAINER_COST = 64
/** Per string value: its header (the characters are counted with the text). */
const STRING_COST = 32

/**
 * One pass over `bytes` read as JSON (strings skipped): `tooDeep` when it opens more than `maxDepth` arrays and
 * objects inside each other (the scan stops there), else what JSON.parse would take on the heap, estimated from the
 * counts of values, arrays, objects and strings. The densest body of numbers (`0,0,0,...`) comes to 6 bytes per
 * byte, JSON_BODY_RSS_FACTOR (src/config.ts).
 */
export function scanJson(bytes: Uint8Array, maxDepth: number): { tooDeep: true } | { heapBytes: number } {
  let depth = 0
  let values = 1
  let containers = 0
  let strings = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!
    if (c === QUOTE) {
      strings++
      for (i++; i < n; i++) {
        const s = bytes[i]!
        if (s === BACKSLASH) i++
        else if (s === QUOTE) break
      }
    } else if (c === COMMA) {
      values++
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      containers++
      if (++depth > maxDepth) return { tooDeep: true }
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return { heapBytes: TEXT_COST * n + VALUE_COST * values + CONTAINER_COST * containers + STRING_COST * strings }
}

/** True when `bytes`, read as JSON, opens more than `max` arrays and objects inside each other (strings skipped). */
export function nestsDeeperThan(bytes: Uint8Array, max: number): boolean {
  // A body with at most `max` brackets and braces in all cannot nest deeper. Counted with indexOf (native memchr),
  // this settles the common small body without the byte loop: 0.3 instead of 17 µs for one 768-value instance.
  if (countOf(bytes, OPEN_ARRAY, max) + countOf(bytes, OPEN_OBJECT, max) <= max) return false
  return 'tooDeep' in scanJson(bytes, max)
}

/** What JSON.parse of `bytes` would take on the heap (scanJson without a depth bound). */
export function parsedHeapBytes(bytes: Uint8Array): number {
  const scan = scanJson(bytes, Infinity)
  return 'heapBytes' in scan ? scan.heapBytes : 0
}

/** Occurrences of `byte` in `bytes`, up to `limit` + 1 (counting stops there). */
function countOf(bytes: Uint8Array, byte: number, limit: number): number {
  let count = 0
  for (let at = bytes.indexOf(byte); at >= 0 && count <= limit; at = bytes.indexOf(byte, at + 1)) count++
  return count
}
