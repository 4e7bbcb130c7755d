// MHE label codec: mixed-radix ids (head 1 most significant) and the exact top-k over the heads' product.
// Pure TypeScript on purpose: no tfjs here, so the math is tested alone against brute force.

/** n_1 * ... * n_H: how many ids the heads compose (at least numLabels; ids past it are never answered). */
export function idSpace(heads: readonly number[]): number {
  let product = 1
  for (const n of heads) product *= n
  return product
}

/** n_1 + ... + n_H: the model's outputs per instance, all heads side by side. */
export function outputWidth(heads: readonly number[]): number {
  let sum = 0
  for (const n of heads) sum += n
  return sum
}

/** s_h = n_{h+1} * ... * n_H, with s_H = 1. */
export function strides(heads: readonly number[]): number[] {
  const s = new Array<number>(heads.length)
  let acc = 1
  for (let h = heads.length - 1; h >= 0; h--) {
    s[h] = acc
    acc *= heads[h]!
  }
  return s
}

/** y_h = floor(Y / s_h) mod n_h. */
export function decompose(id: number, heads: readonly number[]): number[] {
  const local = new Array<number>(heads.length)
  let rest = id
  for (let h = heads.length - 1; h >= 0; h--) {
    const n = heads[h]!
    local[h] = rest % n
    rest = Math.floor(rest / n)
  }
  return local
}

/** Y = sum_h y_h * s_h. */
export function compose(local: ArrayLike<number>, heads: readonly number[]): number {
  let id = 0
  for (let h = 0; h < heads.length; h++) id = id * heads[h]! + local[h]!
  return id
}

/** One head's candidates, best first: local ids and their log-probabilities (log-softmax). */
export interface HeadList {
  indices: ArrayLike<number>
  logProbs: ArrayLike<number>
}

export interface Candidate {
  id: number
  /** Sum of the heads' log-probabilities = log of the product of their softmax probabilities. */
  logScore: number
  headIds: number[]
}

const better = (a: Candidate, b: Candidate): number => b.logScore - a.logScore || a.id - b.id

/**
 * Keeps the best `keep` sums of two best-first lists. Pair (i, j) has at least (i+1)(j+1)-1 pairs at least as
 * good, so only pairs with (i+1)(j+1) <= keep can be among the best `keep`.
 */
function mergeTwo(prefix: Candidate[], head: HeadList, n: number, keep: number): Candidate[] {
  const out: Candidate[] = []
  const m = head.indices.length
  for (let i = 0; i < prefix.length; i++) {
    const p = prefix[i]!
    const jMax = Math.min(m, Math.floor(keep / (i + 1)))
    for (let j = 0; j < jMax; j++) {
      const y = head.indices[j]!
      out.push({ id: p.id * n + y, logScore: p.logScore + head.logProbs[j]!, headIds: [...p.headIds, y] })
    }
  }
  out.sort(better)
  if (out.length > keep) out.length = keep
  return out
}

/**
 * Exact top-k valid labels from per-head candidate lists that each hold the head's best min(n_h, kPrime).
 * Returns null when ids >= numLabels crowd the candidates and more per head are needed (double kPrime).
 * `product` is idSpace(heads); a caller that merges per instance computes it once and passes it.
 */
export function mergeTopK(
  lists: readonly HeadList[],
  heads: readonly number[],
  numLabels: number,
  k: number,
  kPrime: number,
  product = idSpace(heads),
): Candidate[] | null {
  const keep = Math.min(kPrime, product)
  // Fast path for argmax: compose the heads' best ids.
  if (k === 1) {
    let id = 0
    let logScore = 0
    for (let h = 0; h < heads.length; h++) {
      id = id * heads[h]! + lists[h]!.indices[0]!
      logScore += lists[h]!.logProbs[0]!
    }
    if (id < numLabels) return [{ id, logScore, headIds: lists.map((l) => l.indices[0]!) }]
  }
  let partial: Candidate[] = [{ id: 0, logScore: 0, headIds: [] }]
  for (let h = 0; h < heads.length; h++) partial = mergeTwo(partial, lists[h]!, heads[h]!, keep)
  const valid = partial.filter((c) => c.id < numLabels)
  if (valid.length >= k) return valid.slice(0, k)
  return keep >= product ? valid : null
}

/** Exact top-k valid labels from the heads' full log-probability vectors, widening kPrime until it is exact. */
export function exactTopK(
  full: readonly ArrayLike<number>[],
  heads: readonly number[],
  numLabels: number,
  k: number,
): Candidate[] {
  const sorted: HeadList[] = full.map((row) => {
    const idx = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b)
    return { indices: idx, logProbs: idx.map((i) => row[i]!) }
  })
  const product = idSpace(heads)
  for (let kPrime = Math.max(k, 1); ; kPrime *= 2) {
    const lists = sorted.map((l, h) => {
      const m = Math.min(heads[h]!, kPrime)
      return { indices: (l.indices as number[]).slice(0, m), logProbs: (l.logProbs as number[]).slice(0, m) }
    })
    const result = mergeTopK(lists, heads, numLabels, k, kPrime, product)
    if (result !== null) return result
  }
}
