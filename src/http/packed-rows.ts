// Instances parsed off the event loop (src/http/json-thread.ts): every number of every row in one Float32Array, and
// each row's length, instead of one JS array per row. The /predict route reads either form.

import type { NonFinite } from './json-worker.js'

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

/** A body whose instances were parsed and shape-checked on the JSON thread: the schema has nothing left to check. */
export const isPackedBody = (data: unknown): boolean =>
  typeof data === 'object' && data !== null && (data as { instances?: unknown }).instances instanceof PackedRows
