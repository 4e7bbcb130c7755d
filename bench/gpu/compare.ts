// Compares two backends' top-k answers for the same features (bench/gpu/check.ts): ids equal except at near-ties,
// log-scores within a tolerance. Pure, so tests check it without a GPU.

/** One instance's top-k, best first: [label id, log-score] (log of the product of the heads' probabilities). */
export type Answer = [id: number, logScore: number][]

/**
 * Float32 sums of 768-4096 products taken in another order (GPU tiles vs wasm SIMD) differ by about
 * sqrt(n)·2^-24·Σ|w·x| (~1e-5 in a logit here) and at worst n·2^-24·Σ|w·x| (~1e-3 for the demo's 4096 inputs);
 * a log-score sums H log-softmaxes of such logits. 1e-3 in log-score = scores within 0.1% of each other.
 */
export const LOG_SCORE_TOLERANCE = 1e-3

export interface Agreement {
  instances: number
  /** Labels compared (the same id in both answers of an instance). */
  labels: number
  /** Ranks whose ids differ while every score involved agrees within the tolerance (near-ties). */
  nearTies: number
  /** A label scored differently beyond the tolerance, one backend missing a label that beats its own last by more
   *  than the tolerance, or answers of different lengths. */
  mismatches: number
  maxAbsLogScoreDiff: number
  /** The first few mismatches, for the report. */
  examples: string[]
}

/**
 * Each label both answers hold must score the same within `tolerance`; a label only one of them holds must not
 * beat the other's last label by more than `tolerance` (else the other missed it). Ids at a rank may then differ
 * only between labels whose scores are that close: near-ties, counted but accepted.
 */
export function compareAnswers(reference: readonly Answer[], other: readonly Answer[], tolerance = LOG_SCORE_TOLERANCE): Agreement {
  const out: Agreement = { instances: reference.length, labels: 0, nearTies: 0, mismatches: 0, maxAbsLogScoreDiff: 0, examples: [] }
  const miss = (what: string): void => {
    out.mismatches++
    if (out.examples.length < 5) out.examples.push(what)
  }
  if (other.length !== reference.length) miss(`${other.length} instances answered, expected ${reference.length}`)
  for (let i = 0; i < Math.min(reference.length, other.length); i++) {
    const a = reference[i]!
    const b = other[i]!
    if (a.length !== b.length) miss(`instance ${i}: ${b.length} labels, expected ${a.length}`)
    const inA = new Map(a)
    const inB = new Map(b)
    const lastA = Math.min(...a.map(([, s]) => s))
    const lastB = Math.min(...b.map(([, s]) => s))
    for (const [id, sa] of a) {
      const sb = inB.get(id)
      if (sb === undefined) {
        if (!(sa <= lastB + tolerance)) miss(`instance ${i}: label ${id} (log-score ${sa}) is missing from the answer`)
        continue
      }
      out.labels++
      const diff = Math.abs(sa - sb)
      if (!(diff <= tolerance)) miss(`instance ${i}: label ${id} log-score ${sb} vs ${sa}`)
      if (!Number.isNaN(diff)) out.maxAbsLogScoreDiff = Math.max(out.maxAbsLogScoreDiff, diff)
    }
    for (const [id, sb] of b) {
      if (!inA.has(id) && !(sb <= lastA + tolerance)) miss(`instance ${i}: label ${id} (log-score ${sb}) is not in the reference answer`)
    }
    for (let j = 0; j < Math.min(a.length, b.length); j++) if (a[j]![0] !== b[j]![0]) out.nearTies++
  }
  return out
}
