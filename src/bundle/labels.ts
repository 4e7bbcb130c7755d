// Label store: labels.txt (one UTF-8 name per line, line i = label id i) -> id -> name.
// Compact for millions of names: the raw bytes and one offsets array (a single allocation when read from a file),
// names decoded on lookup. LabelStore.read indexes the file chunk by chunk as it arrives, so a server that loads a new
// version while it serves never blocks its event loop for the whole file; release() hands the memory back at once
// instead of at the next major GC, and a large store is an allocation that the C allocator maps and unmaps by itself
// (see storeBuffer), so that unloading a version gives its memory back to the OS. Versions whose label files hold the
// same bytes (a model retrained on the same labels) share one store: the file is compared with the stores in memory
// instead of indexed again, which costs a load a byte compare instead of the index and the memory.

import { isUtf8 } from 'node:buffer'
import { open, type FileHandle } from 'node:fs/promises'
import { MessageChannel } from 'node:worker_threads'
import { BundleError } from '../errors.js'

const LF = 0x0a
const CR = 0x0d
/** Whether a word's first byte is its lowest (how LineIndex reads the bytes of a word from its bits). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
/** Bytes read and indexed per step of LabelStore.read (about a millisecond of indexing between event-loop turns). */
const READ_CHUNK = 1 << 20

/**
 * glibc's malloc serves a request below its mmap threshold from the heap, which does not shrink when a buffer in its
 * middle is freed, and the threshold rises to the size of the last large buffer freed (up to 32 MiB): after the first
 * unload, every later version's labels would land in the heap and stay in the RSS after their own unload (measured:
 * +45 MB after swaps of the 10^6-label bundle). A request above 32 MiB is always a mapping of its own, unmapped on
 * free; only the pages written are resident, so the rounding up costs address space, not memory. But V8 counts the
 * whole buffer as external memory, and that starts a full GC: one per swap of the 10^6-label bundle with labels of its
 * own (17 MB rounded up to 32 MiB), one per two or three without the rounding; the p99 of the answers during such
 * swaps went 20.6 -> 13.6 ms without it (interleaved A/B of bench/swap.ts's phase, 3 rounds; 8.4 / 8.0 between
 * swaps). So the rounding is only for a process where MALLOC_MMAP_THRESHOLD_ is not fixed at or below the store's
 * size: `npm start` and the image set it (every buffer of 128 KiB and more is mapped anyway); this keeps a plain
 * `node dist/src/main.js` right too.
 */
const ALWAYS_MAPPED = 32 * 2 ** 20 + 4096
/** glibc's mmap threshold as fixed by MALLOC_MMAP_THRESHOLD_ (read by glibc at start-up), NaN when not fixed. */
const FIXED_MMAP_THRESHOLD = /^\d+$/.test(process.env.MALLOC_MMAP_THRESHOLD_ ?? '') ? Number(process.env.MALLOC_MMAP_THRESHOLD_) : NaN
/**
 * Stores from this size on are rounded up to ALWAYS_MAPPED; a smaller one leaves at most a few MB behind, and many
 * models with small label files would otherwise reserve 32 MiB of address space each.
 */
const LARGE_STORE = 4 * 2 ** 20

/** Entries of a starts array sized for `lines` lines (grown if the file has more). */
const startsLength = (lines: number): number => Math.max(16, lines + 1)

/**
 * One buffer for a store of `length` bytes and `lines` offsets (offsets first, 4-byte aligned): the names and the
 * starts array it holds, freed together.
 */
function storeBuffer(length: number, lines: number): { bytes: Buffer; starts: Uint32Array } {
  const offsetBytes = 4 * startsLength(lines)
  const needed = offsetBytes + length
  const mappedAnyway = needed >= FIXED_MMAP_THRESHOLD // false when NaN
  const whole = new ArrayBuffer(needed >= LARGE_STORE && !mappedAnyway ? Math.max(needed, ALWAYS_MAPPED) : needed)
  return { starts: new Uint32Array(whole, 0, offsetBytes / 4), bytes: Buffer.from(whole, offsetBytes, length) }
}

/** Line starts, found chunk by chunk: starts[0] = 0, starts[i] = the byte after the i-th LF. */
class LineIndex {
  starts: Uint32Array
  lines = 0

  constructor(expectedLines: number, starts: Uint32Array = new Uint32Array(startsLength(expectedLines))) {
    this.starts = starts
  }

  /**
   * Indexes the line breaks in bytes[from, to). Four bytes at a time where they are aligned: a word without a line
   * break (most of them) costs one test, and a word with one is read from its bits, not byte by byte (on the
   * 10^6-label bench file: 4.0 ms, against 8.3 for a byte loop per word with a break, 12.7 for a byte loop and 9.5
   * for indexOf per line).
   */
  scan(bytes: Uint8Array, from: number, to: number): void {
    // Bytes [from, head) one at a time up to a 4-byte boundary, [head, tail) a word at a time, the rest one at a time.
    const head = Math.min(to, from + ((4 - ((bytes.byteOffset + from) % 4)) % 4))
    const tail = to - ((to - head) % 4)
    this.scanBytes(bytes, from, head)
    // No view for a range that never reaches a 4-byte boundary (its start would be unaligned).
    if (tail > head) this.scanWords(new Int32Array(bytes.buffer, bytes.byteOffset + head, (tail - head) / 4), bytes, head)
    this.scanBytes(bytes, tail, to)
  }

  private scanBytes(bytes: Uint8Array, from: number, to: number): void {
    for (let p = from; p < to; p++) {
      if (bytes[p] !== LF) continue
      if (this.lines + 2 > this.starts.length) this.grow()
      this.starts[++this.lines] = p + 1
    }
  }

  /** words = bytes[at, at + 4 * words.length); a word with a line break read from its bits where they are in order. */
  private scanWords(words: Int32Array, bytes: Uint8Array, at: number): void {
    let starts = this.starts
    let n = this.lines
    for (let w = 0; w < words.length; w++) {
      const x = words[w]! ^ 0x0a0a0a0a // a byte of x is zero exactly where the word has a line break
      if (((x - 0x01010101) & ~x & 0x80808080) === 0) continue
      const p = at + 4 * w
      if (LITTLE_ENDIAN && n + 5 <= starts.length) {
        if ((x & 0xff) === 0) starts[++n] = p + 1
        if ((x & 0xff00) === 0) starts[++n] = p + 2
        if ((x & 0xff0000) === 0) starts[++n] = p + 3
        if ((x & 0xff000000) === 0) starts[++n] = p + 4
      } else {
        // Byte by byte, growing the starts only for a line that is there (an exact manifest count never grows them).
        this.lines = n
        this.scanBytes(bytes, p, p + 4)
        starts = this.starts
        n = this.lines
      }
    }
    this.lines = n
  }

  /** Twice the room for line starts (a file with more lines than it said). */
  private grow(): Uint32Array {
    const grown = new Uint32Array(this.starts.length * 2)
    grown.set(this.starts)
    return (this.starts = grown)
  }

  /** The offsets of a store of `length` bytes, trimmed to size (a final line without a line break counts). */
  finish(bytes: Uint8Array): { starts: Uint32Array; size: number } {
    const unterminated = bytes.length > 0 && bytes[bytes.length - 1] !== LF
    const size = this.lines + (unterminated ? 1 : 0)
    let starts = this.starts
    if (starts.length > size + 1) starts = starts.slice(0, size + 1)
    else if (starts.length < size + 1) (starts = new Uint32Array(size + 1)).set(this.starts) // the unterminated last line's end
    starts[size] = bytes.length + (unterminated ? 1 : 0)
    return { starts, size }
  }
}

/** Frees an ArrayBuffer's memory now: transferred into a channel that is closed, its backing store goes with it. */
function freeNow(buffer: ArrayBuffer): void {
  const { port1, port2 } = new MessageChannel()
  port1.postMessage(null, [buffer])
  port1.close()
  port2.close()
}

/** The buffers of a store read from a file, held by every store over the same bytes; freed when the last lets go. */
interface Held {
  bytes: Buffer
  starts: Uint32Array
  size: number
  holders: number
}

/** The stores read from files and not yet released, by file length: the ones a new file may be the same as. */
const heldByLength = new Map<number, Set<Held>>()

function letGo(held: Held): void {
  if (--held.holders > 0) return
  const same = heldByLength.get(held.bytes.length)
  same?.delete(held)
  if (same?.size === 0) heldByLength.delete(held.bytes.length)
  freeNow(held.bytes.buffer as ArrayBuffer)
  if (held.starts.buffer !== held.bytes.buffer) freeNow(held.starts.buffer as ArrayBuffer) // grown or trimmed: a buffer of its own
}

/** Whether the file open as `fh` holds exactly `bytes` (read and compared a chunk at a time, stopping at the first difference). */
async function fileHolds(fh: FileHandle, bytes: Buffer): Promise<boolean> {
  const chunk = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK, bytes.length))
  try {
    for (let at = 0; at < bytes.length; ) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, bytes.length - at), at)
      if (bytesRead === 0 || !chunk.subarray(0, bytesRead).equals(bytes.subarray(at, at + bytesRead))) return false
      at += bytesRead
    }
    return true
  } finally {
    // Freed now, not at the next full GC: until then a MiB per swap stayed in the RSS (+29 MB after 30 swaps).
    freeNow(chunk.buffer as ArrayBuffer)
  }
}

export class LabelStore {
  /** Number of labels (lines). */
  readonly size: number
  readonly file: string
  private bytes: Buffer
  /** starts[i] = byte offset of line i; starts[size] = end of the last line + its line break. */
  private starts: Uint32Array
  /** The buffers this store holds with others over the same file bytes (read), which release() lets go of. */
  private readonly held: Held | undefined
  private released = false

  private constructor(bytes: Buffer, starts: Uint32Array, size: number, file: string, held?: Held) {
    this.bytes = bytes
    this.starts = starts
    this.size = size
    this.file = file
    this.held = held
  }

  /**
   * Indexes `buf` (kept by reference, not copied). A final line break is optional; CRLF line ends and a
   * leading UTF-8 BOM are tolerated. Throws BundleError naming `file` if the bytes are not valid UTF-8.
   */
  static fromBuffer(buf: Uint8Array, file: string): LabelStore {
    const bytes = LabelStore.checked(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), file)
    const index = new LineIndex(0)
    index.scan(bytes, 0, bytes.length)
    const { starts, size } = index.finish(bytes)
    return new LabelStore(bytes, starts, size, file)
  }

  /**
   * Reads and indexes `file` a chunk at a time (the event loop runs between chunks). `expectedLines` sizes the
   * offsets array up front (the manifest's numLabels). A file with the same bytes as a store read before and not
   * released shares that store's buffers. Errors as fromBuffer; a file that cannot be read rejects with the fs error
   * (its `code` set).
   */
  static async read(file: string, expectedLines = 0): Promise<LabelStore> {
    const fh = await open(file, 'r')
    try {
      const { size: length } = await fh.stat()
      if (length >= 2 ** 32) throw new BundleError(file, `is ${length} bytes, the label store holds at most 4 GiB`)
      for (const held of [...(heldByLength.get(length) ?? [])]) {
        // Released while an earlier one was compared: freed, its buffer detached (it would compare equal to anything).
        if (held.holders === 0) continue
        held.holders++ // not freed while compared, should its version be unloaded meanwhile
        let same = false
        try {
          same = await fileHolds(fh, held.bytes)
        } finally {
          if (!same) letGo(held)
        }
        if (same) return new LabelStore(held.bytes, held.starts, held.size, file, held)
      }
      const store = storeBuffer(length, expectedLines) // its own ArrayBuffer (never the shared pool): release() frees it
      const bytes = store.bytes
      const index = new LineIndex(expectedLines, store.starts)
      let at = 0
      // Bytes [0, valid) are checked UTF-8 and end at a line break: ASCII, so no character spans it, and each chunk
      // is checked as it arrives instead of the whole file in one call at the end.
      let valid = 0
      while (at < length) {
        const { bytesRead } = await fh.read(bytes, at, Math.min(READ_CHUNK, length - at), at)
        if (bytesRead === 0) break // shrank while read: what is there is indexed, and the line count says the rest
        index.scan(bytes, at, at + bytesRead)
        at += bytesRead
        valid = LabelStore.checkUtf8(bytes, valid, index.starts[index.lines]!, file)
      }
      const read = bytes.subarray(0, at)
      LabelStore.checkUtf8(read, valid, at, file)
      const body = LabelStore.withoutBom(read)
      let indexed = index
      if (body !== read) {
        // A BOM: index again without it (rare; a BOM is three bytes, so every offset moves).
        indexed = new LineIndex(expectedLines)
        indexed.scan(body, 0, body.length)
      }
      const { starts, size } = indexed.finish(body)
      const held: Held = { bytes: body, starts, size, holders: 1 }
      // Only a whole file without a BOM can be compared byte for byte with the next one.
      if (body === read && at === length) heldByLength.set(length, (heldByLength.get(length) ?? new Set()).add(held))
      return new LabelStore(body, starts, size, file, held)
    } finally {
      // A read-only file: nothing is lost if closing fails, and a store made above must reach its caller.
      await fh.close().catch(() => undefined)
    }
  }

  /** Name of label `id`; RangeError if `id` is not an integer in [0, size). */
  name(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) {
      throw new RangeError(`label id ${id} is out of range: ${this.file} has ${this.size} labels (0..${this.size - 1})`)
    }
    if (this.released) throw new Error(`the labels of ${this.file} were released (the version was unloaded)`)
    const start = this.starts[id]!
    let end = this.starts[id + 1]! - 1 // drop the LF (or the virtual one after an unterminated last line)
    if (end > start && this.bytes[end - 1] === CR) end--
    return this.bytes.toString('utf8', start, end)
  }

  /** Label stores read from files and not released (each counted once however many share it), for tests. */
  static heldStores(): number {
    let n = 0
    for (const same of heldByLength.values()) n += same.size
    return n
  }

  /** Bytes held (names + offsets, shared ones counted in full), for the memory test. */
  get byteSize(): number {
    return this.released ? 0 : this.bytes.byteLength + this.starts.byteLength
  }

  /**
   * Frees the names and offsets now, when this store read them itself (read()) and no other store shares them;
   * name() throws afterwards. A store over a caller's buffer (fromBuffer) only forgets it. Call once nothing looks
   * names up any more (unload).
   */
  release(): void {
    if (this.released) return
    this.released = true
    this.bytes = Buffer.alloc(0)
    this.starts = new Uint32Array(0)
    if (this.held !== undefined) letGo(this.held)
  }

  /** `bytes` without a leading BOM, checked: at most 4 GiB of valid UTF-8. */
  private static checked(bytes: Buffer, file: string): Buffer {
    bytes = LabelStore.withoutBom(bytes)
    if (bytes.length >= 2 ** 32) throw new BundleError(file, `is ${bytes.length} bytes, the label store holds at most 4 GiB`)
    LabelStore.checkUtf8(bytes, 0, bytes.length, file)
    return bytes
  }

  private static withoutBom(bytes: Buffer): Buffer {
    return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes
  }

  /** Checks that bytes[from, to) are valid UTF-8 (naming the first bad line of bytes if not); returns `to`. */
  private static checkUtf8(bytes: Buffer, from: number, to: number, file: string): number {
    if (to > from && !isUtf8(bytes.subarray(from, to))) LabelStore.badUtf8(bytes.subarray(0, to), file)
    return to
  }

  /** Names the first line that is not valid UTF-8 (only once the whole buffer failed the fast check). */
  private static badUtf8(bytes: Buffer, file: string): never {
    let line = 0
    let start = 0
    for (;;) {
      const lf = bytes.indexOf(LF, start)
      const end = lf === -1 ? bytes.length : lf
      if (!isUtf8(bytes.subarray(start, end))) throw new BundleError(file, `is not valid UTF-8 (line ${line + 1}, label id ${line})`)
      if (lf === -1) break
      start = lf + 1
      line++
    }
    throw new BundleError(file, 'is not valid UTF-8')
  }
}
