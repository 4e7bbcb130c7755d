// Label store: labels.txt (one UTF-8 name per line, line i = label id i) -> id -> name.
// Compact for millions of names: the raw bytes stay in one buffer, names are decoded on lookup.

import { BundleError } from '../errors.js'

const LF = 0x0a
const CR = 0x0d

export class LabelStore {
  /** Number of labels (lines). */
  readonly size: number
  readonly file: string
  private readonly bytes: Buffer
  /** starts[i] = byte offset of line i; starts[size] = end of the last line + its line break. */
  private readonly starts: Uint32Array

  private constructor(bytes: Buffer, starts: Uint32Array, size: number, file: string) {
    this.bytes = bytes
    this.starts = starts
    this.size = size
    this.file = file
  }

  /**
   * Indexes `buf` (kept by reference, not copied). A final line break is optional; CRLF line ends and a
   * leading UTF-8 BOM are tolerated. Throws BundleError naming `file` if the bytes are not valid UTF-8.
   */
  static fromBuffer(buf: Uint8Array, file: string): LabelStore {
    let bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
    if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3)
    if (bytes.length >= 2 ** 32) throw new BundleError(file, `is ${bytes.length} bytes, the label store holds at most 4 GiB`)
    LabelStore.checkUtf8(bytes, file)

    let lines = 0
    for (let p = bytes.indexOf(LF); p !== -1; p = bytes.indexOf(LF, p + 1)) lines++
    const unterminated = bytes.length > 0 && bytes[bytes.length - 1] !== LF
    const size = lines + (unterminated ? 1 : 0)
    const starts = new Uint32Array(size + 1)
    let i = 0
    for (let p = bytes.indexOf(LF); p !== -1; p = bytes.indexOf(LF, p + 1)) starts[++i] = p + 1
    starts[size] = bytes.length + (unterminated ? 1 : 0)
    return new LabelStore(bytes, starts, size, file)
  }

  /** Name of label `id`; RangeError if `id` is not an integer in [0, size). */
  name(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) {
      throw new RangeError(`label id ${id} is out of range: ${this.file} has ${this.size} labels (0..${this.size - 1})`)
    }
    const start = this.starts[id]!
    let end = this.starts[id + 1]! - 1 // drop the LF (or the virtual one after an unterminated last line)
    if (end > start && this.bytes[end - 1] === CR) end--
    return this.bytes.toString('utf8', start, end)
  }

  /** Bytes held (names + offsets), for metrics and the memory test. */
  get byteSize(): number {
    return this.bytes.byteLength + this.starts.byteLength
  }

  private static checkUtf8(bytes: Buffer, file: string): void {
    // Decode in chunks so a 100 MB file never becomes one 100 MB string.
    const decoder = new TextDecoder('utf-8', { fatal: true })
    const CHUNK = 1 << 20
    try {
      for (let p = 0; p < bytes.length; p += CHUNK) {
        decoder.decode(bytes.subarray(p, Math.min(p + CHUNK, bytes.length)), { stream: p + CHUNK < bytes.length })
      }
    } catch {
      // Find the first bad line for the message.
      const strict = new TextDecoder('utf-8', { fatal: true })
      let line = 0
      let start = 0
      for (;;) {
        const lf = bytes.indexOf(LF, start)
        const end = lf === -1 ? bytes.length : lf
        try {
          strict.decode(bytes.subarray(start, end))
        } catch {
          throw new BundleError(file, `is not valid UTF-8 (line ${line + 1}, label id ${line})`)
        }
        if (lf === -1) break
        start = lf + 1
        line++
      }
      throw new BundleError(file, 'is not valid UTF-8')
    }
  }
}
