// A small, strict reader of the safetensors format (the file PyTorch users share weights in):
// 8-byte little-endian header length, a JSON header, then a data section every tensor tiles exactly.
// No maintained npm package reads it; this one validates everything and decodes F32, F16 and BF16.

import { open, type FileHandle } from 'node:fs/promises'

/** Bits per element of every dtype the format defines; only F32, F16 and BF16 can be decoded here. */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
}
export const DECODABLE_DTYPES = ['F32', 'F16', 'BF16'] as const
export type DecodableDtype = (typeof DECODABLE_DTYPES)[number]

/** Same limit as the reference Rust implementation: a larger header is a broken or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000

export class SafetensorsError extends Error {
  readonly file: string
  constructor(file: string, message: string) {
    super(`${file}: ${message}`)
    this.name = 'SafetensorsError'
    this.file = file
  }
}

export interface TensorInfo {
  name: string
  dtype: string
  shape: number[]
  /** Byte offsets into the data section, [begin, end). */
  begin: number
  end: number
}

export interface SafetensorsHeader {
  /** Length of the JSON header in bytes; the data section starts at 8 + headerBytes. */
  headerBytes: number
  dataBytes: number
  metadata: Record<string, string> | undefined
  /** Tensors in file order of their data. */
  tensors: TensorInfo[]
}

export const formatShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** Reads the 8-byte prefix: the header length, checked against the file size. */
export function parseHeaderLength(prefix: Uint8Array, fileBytes: number, file: string): number {
  if (fileBytes < 8 || prefix.byteLength < 8) {
    throw new SafetensorsError(file, `truncated file: ${fileBytes} bytes, shorter than the 8-byte header length`)
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true)
  if (n > BigInt(fileBytes - 8)) {
    throw new SafetensorsError(file, `header length ${n} goes past the end of the file (${fileBytes - 8} bytes after the 8-byte prefix); truncated or not a safetensors file`)
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(file, `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`)
  if (n < 2n) throw new SafetensorsError(file, `header length ${n} is too small for a JSON object`)
  return Number(n)
}

/** Parses and validates the JSON header against the size of the data section that follows it. */
export function parseHeader(json: Uint8Array, dataBytes: number, file: string): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new SafetensorsError(file, msg)
  }
  let text = ''
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json)
  } catch {
    fail('header is not valid UTF-8; not a safetensors file')
  }
  // The format allows trailing spaces (padding) after the JSON object and requires it to start with '{'.
  if (!text.startsWith('{')) fail(`header does not start with '{' (got ${JSON.stringify(text.slice(0, 16))}); not a safetensors file`)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    fail(`header is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('header is not a JSON object')

  let metadata: Record<string, string> | undefined
  const tensors: TensorInfo[] = []
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value) ||
        !Object.values(value).every((v) => typeof v === 'string')) {
        fail('"__metadata__" must be an object of string values')
      }
      metadata = value as Record<string, string>
      continue
    }
    const where = `tensor "${name}"`
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: expected an object {dtype, shape, data_offsets}`)
    const v = value as Record<string, unknown>
    const { dtype, shape, data_offsets: offsets } = v
    if (typeof dtype !== 'string' || DTYPE_BITS[dtype] === undefined) {
      fail(`${where}: unknown dtype ${JSON.stringify(dtype)}`)
    }
    if (!Array.isArray(shape) || !shape.every(isIndex)) fail(`${where}: "shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`)
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      fail(`${where}: "data_offsets" must be [begin, end] with non-negative integers, got ${JSON.stringify(offsets)}`)
    }
    const [begin, end] = offsets as [number, number]
    const dims = shape as number[]
    if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`)
    const elements = dims.reduce((a, d) => a * d, 1)
    const bits = elements * DTYPE_BITS[dtype as string]!
    if (!Number.isSafeInteger(bits)) fail(`${where}: shape ${formatShape(dims)} is too large`)
    if (bits % 8 !== 0) fail(`${where}: ${elements} elements of ${String(dtype)} do not fill whole bytes`)
    if (end - begin !== bits / 8) {
      fail(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but dtype ${String(dtype)} x shape ${formatShape(dims)} needs ${bits / 8}`)
    }
    if (end > dataBytes) {
      fail(`truncated file: ${where} needs bytes [${begin}, ${end}) of the data section, which has only ${dataBytes} bytes`)
    }
    tensors.push({ name, dtype: dtype as string, shape: dims, begin, end })
  }

  // The data section must be tiled exactly: no overlaps, no holes, nothing after the last tensor.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let pos = 0
  let prev: TensorInfo | undefined
  for (const t of tensors) {
    if (t.begin < pos) {
      fail(`tensors "${prev!.name}" [${prev!.begin}, ${prev!.end}) and "${t.name}" [${t.begin}, ${t.end}) overlap in the data section`)
    }
    if (t.begin > pos) fail(`bytes [${pos}, ${t.begin}) of the data section belong to no tensor (hole before "${t.name}")`)
    pos = t.end
    prev = t
  }
  if (pos !== dataBytes) fail(`the data section has ${dataBytes} bytes but the tensors end at byte ${pos} (trailing bytes)`)
  return { headerBytes: json.byteLength, dataBytes, metadata, tensors }
}

export function checkDecodable(info: TensorInfo, file: string): void {
  if (!(DECODABLE_DTYPES as readonly string[]).includes(info.dtype)) {
    throw new SafetensorsError(file, `tensor "${info.name}" has dtype ${info.dtype}; supported: ${DECODABLE_DTYPES.join(', ')} (convert with model.float() before saving)`)
  }
}

/** Decodes one tensor's raw little-endian bytes to float32. */
export function decodeTensor(info: TensorInfo, bytes: Uint8Array, file: string): Float32Array {
  checkDecodable(info, file)
  if (bytes.byteLength !== info.end - info.begin) throw new Error(`decodeTensor: got ${bytes.byteLength} bytes for "${info.name}", expected ${info.end - info.begin}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const n = info.shape.reduce((a, d) => a * d, 1)
  const out = new Float32Array(n)
  switch (info.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true)
      break
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true))
      break
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const bits = new DataView(new ArrayBuffer(4))
      for (let i = 0; i < n; i++) {
        bits.setUint32(0, view.getUint16(2 * i, true) << 16)
        out[i] = bits.getFloat32(0)
      }
      break
    }
  }
  return out
}

/** IEEE 754 binary16 bits to a number (exact: every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

/** An opened safetensors source: the validated header and a way to read one tensor as float32. */
export interface Safetensors {
  file: string
  header: SafetensorsHeader
  tensor(name: string): TensorInfo | undefined
  read(name: string): Promise<Float32Array>
}

function makeSource(file: string, header: SafetensorsHeader, bytesOf: (t: TensorInfo) => Promise<Uint8Array>): Safetensors {
  const byName = new Map(header.tensors.map((t) => [t.name, t]))
  return {
    file,
    header,
    tensor: (name) => byName.get(name),
    async read(name) {
      const info = byName.get(name)
      if (info === undefined) throw new SafetensorsError(file, `no tensor named "${name}"`)
      checkDecodable(info, file) // before reading bytes that could not be used
      return decodeTensor(info, await bytesOf(info), file)
    },
  }
}

/** Parses a whole safetensors file held in memory. */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): Safetensors {
  const n = parseHeaderLength(buf.subarray(0, 8), buf.byteLength, file)
  const header = parseHeader(buf.subarray(8, 8 + n), buf.byteLength - 8 - n, file)
  const start = 8 + n
  return makeSource(file, header, async (t) => buf.subarray(start + t.begin, start + t.end))
}

async function readExactly(fh: FileHandle, pos: number, length: number, file: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, pos + got)
    if (bytesRead === 0) throw new SafetensorsError(file, `truncated file: wanted ${length} bytes at offset ${pos}, the file ends first`)
    got += bytesRead
  }
  return buf
}

/** Opens a safetensors file, reading only the header now and each tensor's bytes when asked (files can be large). */
export async function openSafetensors(path: string): Promise<Safetensors> {
  let header: SafetensorsHeader
  let start: number
  const fh = await open(path, 'r')
  try {
    const size = (await fh.stat()).size
    const n = parseHeaderLength(await readExactly(fh, 0, Math.min(8, size), path), size, path)
    header = parseHeader(await readExactly(fh, 8, n, path), size - 8 - n, path)
    start = 8 + n
  } finally {
    await fh.close()
  }
  // Reopened per read so that no handle stays open between reads.
  return makeSource(path, header, async (t) => {
    const fh = await open(path, 'r')
    try {
      return await readExactly(fh, start + t.begin, t.end - t.begin, path)
    } finally {
      await fh.close()
    }
  })
}
