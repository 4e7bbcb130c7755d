// The engine thread's answers as flat typed arrays: structured-cloning a Candidate[][] costs more than the batch's
// arithmetic, while three buffers move between threads for free (transferred, not copied).

import { decompose, type Candidate } from '../mhe/codec.js'

export interface WireResults {
  /** Candidates per instance. */
  counts: Int32Array
  /** Label ids, instance after instance, best first (float64: exact for any id below 2^53). */
  ids: Float64Array
  logScores: Float64Array
}

export function encodeResults(results: readonly Candidate[][]): WireResults {
  const counts = new Int32Array(results.length)
  let total = 0
  results.forEach((r, i) => {
    counts[i] = r.length
    total += r.length
  })
  const ids = new Float64Array(total)
  const logScores = new Float64Array(total)
  let j = 0
  for (const r of results) {
    for (const c of r) {
      ids[j] = c.id
      logScores[j++] = c.logScore
    }
  }
  return { counts, ids, logScores }
}

/** Inverse of encodeResults; head ids are recomputed from the label ids (they are its mixed-radix digits). */
export function decodeResults(wire: WireResults, heads: readonly number[]): Candidate[][] {
  const out = new Array<Candidate[]>(wire.counts.length)
  let j = 0
  for (let i = 0; i < wire.counts.length; i++) {
    const list = new Array<Candidate>(wire.counts[i]!)
    for (let r = 0; r < list.length; r++, j++) {
      const id = wire.ids[j]!
      list[r] = { id, logScore: wire.logScores[j]!, headIds: decompose(id, heads) }
    }
    out[i] = list
  }
  return out
}
