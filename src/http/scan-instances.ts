// A /predict JSON body of the usual shape, {"instances": [[numbers...]...], "top_k": k}, read straight from its bytes
// into float32 rows: no string, no JS array per row, no boxed number, no depth scan, no schema walk. For one instance
// of 768 values in a hot loop, JSON.parse and the copy into a Float32Array take ~31 µs, this ~24 in JS and ~8 with the
// rows read by native/scan.cc; for float32s printed as doubles (17 digits, as JS and Python clients send them) ~63,
// ~71 and ~21. In the server it also spares the GC an array per request (bench/README.md, sessions 7 and 12).
// Anything else, down to an escaped key or a duplicate one, is left to JSON.parse (undefined), so that every body
// this takes is one JSON.parse reads the same way, and every other body is parsed and described as before.

import type { Packed, NonFinite } from './packed-rows.js'
import { existingInstancePool } from '../serving/instance-pools.js'
import { nativeAddon, type Versioned } from '../native-addon.js'

/**
 * native/scan.cc: a row's numbers as readNumber reads them (both as JSON.parse), or -1 for a row it leaves to the JS
 * reader (a double out of range, a value past float32, malformed JSON, a row past the room).
 */
export interface ScanAddon extends Versioned {
  row(body: Uint8Array, i: number, room: Float32Array, at: number, end: Int32Array): number
}
/** native/scan.cc's SCAN_VERSION: the exports ScanAddon describes. */
export const SCAN_VERSION = 1
const built = nativeAddon<ScanAddon>('scan', SCAN_VERSION)
let nativeRows: ScanAddon | undefined = 'addon' in built ? built.addon : undefined
/** Where the native reader says a row ended (past its ']'). */
const rowEnd = new Int32Array(1)

/** How rows are read, for the start-up line: natively, or in JS and why. */
export function rowReader(): string {
  if (nativeRows !== undefined) return 'natively (native/scan.cc)'
  return `in JS: ${'addon' in built ? 'turned off' : built.reason}`
}

/** Reads rows with native/scan.cc (true, where it is built) or in JS only (false); returns whether it now does. */
export function useNativeRows(on: boolean): boolean {
  nativeRows = on && 'addon' in built ? built.addon : undefined
  return nativeRows !== undefined
}

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
/**
 * Below it, the digits accumulated exactly (every partial value was smaller). At or past it, the number goes to
 * Number(), which rounds as JSON.parse does.
 */
const EXACT = 2 ** 53

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
  if (c === ZERO) {
    c = b[++i]!
  } else if (c > ZERO && c <= NINE) {
    do {
      m = m * 10 + (c - ZERO)
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
  if (fast && m < EXACT && exponent >= -22 && exponent <= 22) {
    const v = exponent < 0 ? m / POW10[-exponent]! : m * POW10[exponent]!
    return negative ? -v : v
  }
  return slowNumber(b, start, i)
}

/** The body that `text` is the latin1 decoding of (one decoding per body, not a Buffer and a string per number). */
let textOf: Uint8Array | undefined
let text = ''

/** Number() of b[start, end): correctly rounded, as JSON.parse. For the numbers past the fast path (17 digits). */
function slowNumber(b: Uint8Array, start: number, end: number): number {
  if (textOf !== b) {
    text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
    textOf = b
  }
  return Number(text.slice(start, end))
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
  /** Where the values go: the buffer kept from body to body, or, once a body outgrows it, a larger one of its own. */
  room = keptRoom()
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
  row(at: number, nonFinite: { first?: NonFinite }): number {
    if (nativeRows !== undefined) {
      const next = nativeRows.row(this.b, this.i, this.room, at, rowEnd)
      if (next >= 0) {
        this.i = rowEnd[0]!
        return next
      }
    }
    const b = this.b
    let room = this.room
    let i = skipSpace(b, this.i)
    if (b[i] === CLOSE_ARRAY) {
      this.i = i + 1
      return at
    }
    for (;;) {
      const x = readNumber(b, i)
      if (Number.isNaN(x)) throw notUsual
      if (at === room.length) room = this.room = doubled(room)
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
    return scan(new Reader(bytes))
  } catch (err) {
    if (err === notUsual) return undefined
    throw err
  } finally {
    // Not kept past the body: a large body's text would stay in memory until the next slow number.
    textOf = undefined
    text = ''
  }
}

function scan(r: Reader): Packed | undefined {
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
      // Typed arrays only, off the JS heap, cut to size below: at most ~4 bytes per byte of body (room doubled once
      // past the values, the copy, the row lengths), less than JSON.parse needs for the same body.
      let rowLengths = new Int32Array(16)
      let rows = 0
      let at = 0
      const bad: { first?: NonFinite } = {}
      r.expect(OPEN_ARRAY)
      if (!r.take(CLOSE_ARRAY)) {
        do {
          r.expect(OPEN_ARRAY)
          const rowStart = at
          at = r.row(at, bad)
          if (rows === rowLengths.length) rowLengths = doubled(rowLengths)
          rowLengths[rows++] = at - rowStart
        } while (r.take(COMMA))
        r.expect(CLOSE_ARRAY)
      }
      nonFinite = bad.first
      // One instance of a served featureDim: into a recycled buffer (the batch gives it back), not a new one per request.
      const pool = rows === 1 ? existingInstancePool(at) : undefined
      values = pool ? pool.take() : new Float32Array(at)
      values.set(r.room.subarray(0, at))
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

/**
 * One buffer of this many values is kept for the next body (per thread: 256 KiB). A new buffer per body, sized for the
 * body, made garbage outside the JS heap on every request, which V8 answers with full collections: c=64 0.80x vs 0.91x
 * the HTTP ceiling, and goodput under overload fell (bench/README.md, session 7).
 */
const KEPT_ROOM = 1 << 16
let kept: Float32Array | undefined

function keptRoom(): Float32Array {
  kept ??= new Float32Array(KEPT_ROOM)
  return kept
}

/** A typed array twice as long with the same first values. */
function doubled<T extends Float32Array | Int32Array>(a: T): T {
  const b = new (a.constructor as new (length: number) => T)(2 * a.length)
  b.set(a)
  return b
}
