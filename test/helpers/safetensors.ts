// Builds safetensors files in memory for the importer's tests, written independently of tools/import/safetensors.ts.

export interface RawTensor {
  name: string
  dtype: string
  shape: number[]
  /** Little-endian bytes of the data. */
  bytes: Uint8Array
}

export const f32Bytes = (values: ArrayLike<number>): Uint8Array => new Uint8Array(Float32Array.from(values).buffer)

/** Raw uint16 patterns (F16 or BF16 bits) as little-endian bytes. */
export const u16Bytes = (bits: ArrayLike<number>): Uint8Array => {
  const out = new Uint8Array(bits.length * 2)
  const view = new DataView(out.buffer)
  for (let i = 0; i < bits.length; i++) view.setUint16(2 * i, bits[i]!, true)
  return out
}

/** bfloat16 bits by truncation: exact for values that are already bfloat16 (test values are chosen so). */
export const bf16Bits = (values: ArrayLike<number>): number[] =>
  Array.from(new Uint32Array(Float32Array.from(values).buffer), (u) => u >>> 16)

export const f32 = (name: string, shape: number[], values: ArrayLike<number>): RawTensor => ({ name, dtype: 'F32', shape, bytes: f32Bytes(values) })

/**
 * A safetensors file: 8-byte LE header length, JSON header, data. `header` may rewrite the header object
 * (to make it lie) and `headerLength` overrides the prefix.
 */
export function buildSafetensors(
  tensors: RawTensor[],
  opts: { metadata?: Record<string, string>; header?: (h: Record<string, unknown>) => unknown; headerLength?: bigint; pad?: number } = {},
): Uint8Array {
  let header: Record<string, unknown> = {}
  if (opts.metadata !== undefined) header.__metadata__ = opts.metadata
  let offset = 0
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] }
    offset += t.bytes.byteLength
  }
  if (opts.header !== undefined) header = opts.header(header) as Record<string, unknown>
  let json = JSON.stringify(header)
  json += ' '.repeat(opts.pad ?? (8 - (json.length % 8)) % 8)
  const head = new TextEncoder().encode(json)
  const out = new Uint8Array(8 + head.byteLength + offset)
  new DataView(out.buffer).setBigUint64(0, opts.headerLength ?? BigInt(head.byteLength), true)
  out.set(head, 8)
  let pos = 8 + head.byteLength
  for (const t of tensors) {
    out.set(t.bytes, pos)
    pos += t.bytes.byteLength
  }
  return out
}

/** A PyTorch-like MHP state_dict: an encoder, the classifier fc [Σn, D] + bias, and an int64 counter. */
export function mhpTensors(heads: readonly number[], dim: number, seed = 1): { tensors: RawTensor[]; weight: Float32Array; bias: Float32Array } {
  let s = seed >>> 0
  const r = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32 - 0.5
  }
  const total = heads.reduce((a, n) => a + n, 0)
  const weight = Float32Array.from({ length: total * dim }, r)
  const bias = Float32Array.from({ length: total }, r)
  const steps = new Uint8Array(8)
  new DataView(steps.buffer).setBigInt64(0, 42n, true)
  return {
    weight,
    bias,
    tensors: [
      f32('encoder.weight', [dim, 5], Float32Array.from({ length: dim * 5 }, r)),
      f32('encoder.bias', [dim], Float32Array.from({ length: dim }, r)),
      f32('fc.weight', [total, dim], weight),
      f32('fc.bias', [total], bias),
      { name: 'steps', dtype: 'I64', shape: [1], bytes: steps },
    ],
  }
}
