// A /predict JSON body of the usual shape, {"instances": [[numbers...]...], "top_k": k}, read straight from its bytes
// into float32 rows: no string, no JS array per row, no boxed number, no depth scan, no schema walk. JSON.parse and
// the copy into a Float32Array took ~38 µs for one instance of 768 values, this ~14 (bench/README.md, session 7).
// Anything else, down to an escaped key or a duplicate one, is left to JSON.parse (undefined), so that every body
// this takes is one JSON.parse reads the same way, and every other body is parsed and described as before.

import type { Packed, NonFinite } from './packed-rows.js'

const SPACE = 0x20
const TAB = 0x09
const LF = 0x0a
const CR = 0x0d
const COMMA = 0x2c
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39
const COLON = 0x3a
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const LOWER_E = 0x65
const UPPER_E = 0x45

/** How deep the usual shape nests: an object, an array, arrays of numbers. */
export const INSTANCES_DEPTH = 3

const INSTANCES = Buffer.from('"instances"')
const TOP_K = Buffer.from('"top_k"')

/** 10^0 .. 10^22: exact in float64, so m * 10^e and m / 10^e are correctly rounded for m < 2^53 (Clinger). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i)
/** Up to 15 digits, the mantissa is exact: more go to Number(), which rounds as JSON.parse does. */
const FAST_DIGITS = 15

/** Where the last number read by readNumber ended. (A module variable: no object per number.) */
let numberEnd = 0

/**
 * The JSON number (RFC 8259 grammar) at b[i], as JSON.parse reads it, or NaN when there is none; it ends at
 * numberEnd. No whitespace is skipped.
 */
function readNumber(b: Uint8Array, i: number): number {
  const start = i
  let c = b[i]!
  const negative = c === MINUS
  if (negative) c = b[++i]!
  let m = 0
  let digits = 0
  if (c === ZERO) {
    c = b[++i]!
  } else if (c > ZERO && c <= NINE) {
    do {
      m = m * 10 + (c - ZERO)
      digits++
      c = b[++i]!
    } while (c >= ZERO && c <= NINE)
  } else {
    return NaN
  }
  let exponent = 0
  if (c === DOT) {
    c = b[++i]!
    const from = i
    while (c >= ZERO && c <= NINE) {
      m = m * 10 + (c - ZERO)
      c = b[++i]!
    }
    if (i === from) return NaN
    exponent = from - i
    // Leading zeros of a fraction (0.000123) are not significant digits.
    digits = m === 0 ? 0 : digits + (i - from)
  }
  let fast = true
  if (c === LOWER_E || c === UPPER_E) {
    c = b[++i]!
    const sign = c === MINUS ? -1 : 1
    if (c === MINUS || c === PLUS) c = b[++i]!
    const from = i
    let e = 0
    while (c >= ZERO && c <= NINE) {
      e = e * 10 + (c - ZERO)
      c = b[++i]!
    }
    if (i === from) return NaN
    fast = i - from <= 4
    exponent += sign * e
  }
  numberEnd = i
  if (fast && digits <= FAST_DIGITS && exponent >= -22 && exponent <= 22) {
    const v = exponent < 0 ? m / POW10[-exponent]! : m * POW10[exponent]!
    return negative ? -v : v
  }
  return Number(Buffer.from(b.buffer, b.byteOffset + start, i - start).toString('latin1'))
}

/** Index of the first byte at or after i that is not JSON whitespace. */
function skipSpace(b: Uint8Array, i: number): number {
  let c = b[i]
  while (c === SPACE || c === LF || c === CR || c === TAB) c = b[++i]
  return i
}

/** Thrown (and caught in scanInstances) at the first byte that is not the usual shape. */
class NotUsual extends Error {}
const notUsual = new NotUsual()

class Reader {
  i = 0
  constructor(private readonly b: Uint8Array) {}

  /** Consumes byte `c` (after spaces), or fails. */
  expect(c: number): void {
    if (!this.take(c)) throw notUsual
  }

  /** Consumes `c` if it comes next (after spaces). */
  take(c: number): boolean {
    this.i = skipSpace(this.b, this.i)
    if (this.b[this.i] !== c) return false
    this.i++
    return true
  }

  /** Consumes the exact bytes of `word` if they come next (after spaces). */
  takeWord(word: Uint8Array): boolean {
    this.i = skipSpace(this.b, this.i)
    const b = this.b
    for (let j = 0; j < word.length; j++) if (b[this.i + j] !== word[j]) return false
    this.i += word.length
    return true
  }

  atEnd(): boolean {
    this.i = skipSpace(this.b, this.i)
    return this.i === this.b.length
  }

  /** A JSON number, after spaces. */
  number(): number {
    const x = readNumber(this.b, skipSpace(this.b, this.i))
    if (Number.isNaN(x)) throw notUsual
    this.i = numberEnd
    return x
  }

  /**
   * The numbers of a row, after its `[`, up to and with its `]`, into `room` from `at`; returns where they end. The
   * first value that is not a finite float32 goes to `nonFinite`. The loop over one row's values, inlined: per value
   * it is most of the work.
   */
  row(room: Float32Array, at: number, nonFinite: { first?: NonFinite }): number {
    const b = this.b
    let i = skipSpace(b, this.i)
    if (b[i] === CLOSE_ARRAY) {
      this.i = i + 1
      return at
    }
    for (;;) {
      const x = readNumber(b, i)
      if (Number.isNaN(x)) throw notUsual
      room[at] = x
      // A finite float64 can still overflow float32 (1e39): checked after the conversion, as the thread does.
      if (!Number.isFinite(room[at]!) && nonFinite.first === undefined) nonFinite.first = { at, sent: x }
      at++
      i = numberEnd
      let c = b[i]
      if (c !== COMMA && c !== CLOSE_ARRAY) c = b[(i = skipSpace(b, i))]
      if (c === CLOSE_ARRAY) break
      if (c !== COMMA) throw notUsual
      i = skipSpace(b, i + 1)
    }
    this.i = i + 1
    return at
  }
}
/**
 * The instances (and top_k) of a body of exactly the usual shape, packed as the JSON thread packs them; undefined for
 * any other body: another key, an escape, a duplicate key, a top_k that is not an integer >= 1, malformed JSON.
 */
export function scanInstances(bytes: Uint8Array): Packed | undefined {
  try {
    return scan(new Reader(bytes), bytes.length)
  } catch (err) {
    if (err === notUsual) return undefined
    throw err
  }
}

function scan(r: Reader, byteLength: number): Packed | undefined {
  r.expect(OPEN_OBJECT)
  let values: Float32Array | undefined
  let lengths: Int32Array | undefined
  let nonFinite: NonFinite | undefined
  let topK: number | undefined
  let first = true
  while (!r.take(CLOSE_OBJECT)) {
    if (!first) r.expect(COMMA)
    first = false
    if (values === undefined && r.takeWord(INSTANCES)) {
      r.expect(COLON)
      // Every value takes at least two bytes ("0,"): room for all of them, cut to size below. Typed arrays only, off
      // the JS heap: at most ~3.5 bytes per byte of body, less than JSON.parse needs for the same body.
      const room = roomFor((byteLength >> 1) + 1)
      let rowLengths = new Int32Array(16)
      let rows = 0
      let at = 0
      const bad: { first?: NonFinite } = {}
      r.expect(OPEN_ARRAY)
      if (!r.take(CLOSE_ARRAY)) {
        do {
          r.expect(OPEN_ARRAY)
          const rowStart = at
          at = r.row(room, at, bad)
          if (rows === rowLengths.length) rowLengths = grown(rowLengths)
          rowLengths[rows++] = at - rowStart
        } while (r.take(COMMA))
        r.expect(CLOSE_ARRAY)
      }
      nonFinite = bad.first
      values = room.slice(0, at)
      lengths = rowLengths.slice(0, rows)
    } else if (topK === undefined && r.takeWord(TOP_K)) {
      r.expect(COLON)
      topK = r.number()
      if (!(Number.isInteger(topK) && topK >= 1)) return undefined
    } else {
      return undefined
    }
  }
  if (!r.atEnd() || values === undefined || lengths === undefined) return undefined
  return { values, lengths, topK, nonFinite }
}

/** Values up to this many are read into one buffer kept for the next body (most bodies are small). */
const KEPT_ROOM = 1 << 16
let keptRoom = new Float32Array(0)

/** A buffer for n values, unzeroed: the kept one for a small body (no allocation, no GC), else a new one. */
function roomFor(n: number): Float32Array {
  if (n > KEPT_ROOM) return new Float32Array(n)
  if (keptRoom.length < n) keptRoom = new Float32Array(KEPT_ROOM)
  return keptRoom
}

function grown(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(2 * a.length)
  b.set(a)
  return b
}
