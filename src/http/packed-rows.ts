// Instances parsed off the event loop (src/http/json-thread.ts): every number of every row in one Float32Array, and
// each row's length, instead of one JS array per row. The /predict route reads either form.

/** Where the first value that is not a finite float32 is, in the packed values, and what was sent there. */
export interface NonFinite {
  at: number
  sent: number
}

/** A body's instances packed (the JSON thread's or scanInstances' work), with its top_k. */
export interface Packed {
  values: Float32Array
  lengths: Int32Array
  topK: number | undefined
  nonFinite: NonFinite | undefined
}

export class PackedRows {
  constructor(
    /** Every row's values, one after another, as float32. */
    readonly values: Float32Array,
    /** Each row's number of values. */
    readonly lengths: Int32Array,
    /** The first value that is not a finite float32, if any (the JSON thread looked at every one). */
    readonly nonFinite: NonFinite | undefined,
  ) {}

  /** Number of rows, as for an array of rows. */
  get length(): number {
    return this.lengths.length
  }
}

/** The packed instances of `v` (a parsed body), or undefined when it is not exactly the request's shape. */
export function pack(v: unknown): Packed | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  for (const key of Object.keys(v)) if (key !== 'instances' && key !== 'top_k') return undefined
  const { instances, top_k: topK } = v as { instances?: unknown; top_k?: unknown }
  if (topK !== undefined && !(Number.isInteger(topK) && (topK as number) >= 1)) return undefined
  if (!Array.isArray(instances)) return undefined
  const lengths = new Int32Array(instances.length)
  let total = 0
  for (let i = 0; i < instances.length; i++) {
    const row: unknown = instances[i]
    if (!Array.isArray(row)) return undefined
    lengths[i] = row.length
    total += row.length
  }
  const values = new Float32Array(total)
  let nonFinite: NonFinite | undefined
  let at = 0
  for (const row of instances as unknown[][]) {
    for (const x of row) {
      if (typeof x !== 'number') return undefined
      values[at] = x
      // A finite float64 can still overflow float32 (1e39): checked after the conversion.
      if (nonFinite === undefined && !Number.isFinite(values[at]!)) nonFinite = { at, sent: x }
      at++
    }
  }
  return { values, lengths, topK: topK as number | undefined, nonFinite }
}

/** The body the /predict routes read: the instances as PackedRows. */
export function packedBody(p: Packed): { instances: PackedRows; top_k?: number } {
  const instances = new PackedRows(p.values, p.lengths, p.nonFinite)
  return p.topK === undefined ? { instances } : { instances, top_k: p.topK }
}

/** A body whose instances were parsed and shape-checked on the JSON thread: the schema has nothing left to check. */
export const isPackedBody = (data: unknown): boolean =>
  typeof data === 'object' && data !== null && (data as { instances?: unknown }).instances instanceof PackedRows
