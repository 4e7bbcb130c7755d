// Hashed character n-gram features of a word: the one featurizer shared by the trainer and the demo client.
// Its settings are written into mhe.json's `features` so a client can rebuild exactly the same vectors.

/**
 * Settings of the featurizer, stored as the manifest's `features` object.
 * A word is lower-cased, wrapped in boundary markers (`<word>`), and every n-gram of the wrapped string for n in
 * `orders` (unigrams skip the markers) plus, if `skipBigrams`, every pair of letters one apart (`a_c`) is hashed
 * with 32-bit FNV-1a over its UTF-16 code units, prefixed by `${n}:` (skip bigrams by `s:`), into `dim` buckets
 * (hash mod dim). With `signed`, bit 31 of the hash picks the sign (+1/-1). Each n-gram adds `weights[n-1]`
 * (skip bigrams `skipWeight`); the vector is then L2-normalised.
 */
export interface NgramSettings {
  type: 'char-ngrams'
  /** Layout version of these settings. */
  version: 1
  dim: number
  orders: number[]
  /** Weight per order n, index n-1. */
  weights: number[]
  skipBigrams: boolean
  skipWeight: number
  signed: boolean
  lowercase: boolean
  hash: 'fnv1a32'
  normalize: 'l2' | 'none'
}

export const DEFAULT_NGRAMS: NgramSettings = {
  type: 'char-ngrams',
  version: 1,
  dim: 4096,
  orders: [1, 2, 3],
  weights: [0.5, 1, 1],
  skipBigrams: true,
  skipWeight: 0.5,
  signed: false,
  lowercase: true,
  hash: 'fnv1a32',
  normalize: 'l2',
}

/** Sparse form of one feature vector: bucket indices (sorted, unique) and their values. */
export interface SparseVector {
  indices: Int32Array
  values: Float32Array
}

/** 32-bit FNV-1a over UTF-16 code units, as an unsigned integer. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** The n-grams a word yields, each with its weight, in a fixed order (used for hashing and for tests). */
export function ngrams(word: string, s: NgramSettings): { gram: string; weight: number }[] {
  const w = s.lowercase ? word.toLowerCase() : word
  const padded = `<${w}>`
  const out: { gram: string; weight: number }[] = []
  for (const n of s.orders) {
    const weight = s.weights[n - 1] ?? 1
    if (n === 1) {
      for (const ch of w) out.push({ gram: `1:${ch}`, weight })
      continue
    }
    for (let i = 0; i + n <= padded.length; i++) out.push({ gram: `${n}:${padded.slice(i, i + n)}`, weight })
  }
  if (s.skipBigrams) {
    for (let i = 0; i + 3 <= padded.length; i++) out.push({ gram: `s:${padded[i]!}${padded[i + 2]!}`, weight: s.skipWeight })
  }
  return out
}

/** Sparse features of one word (an empty word still has the bigram "<>"). */
export function featurizeSparse(word: string, s: NgramSettings): SparseVector {
  const acc = new Map<number, number>()
  for (const { gram, weight } of ngrams(word, s)) {
    const h = fnv1a32(gram)
    const bucket = h % s.dim
    const sign = s.signed && h >= 0x80000000 ? -1 : 1
    acc.set(bucket, (acc.get(bucket) ?? 0) + sign * weight)
  }
  const indices = Int32Array.from([...acc.keys()].sort((a, b) => a - b))
  const values = new Float32Array(indices.length)
  let norm = 0
  for (let i = 0; i < indices.length; i++) {
    const v = acc.get(indices[i]!)!
    values[i] = v
    norm += v * v
  }
  if (s.normalize === 'l2' && norm > 0) {
    const inv = 1 / Math.sqrt(norm)
    for (let i = 0; i < values.length; i++) values[i]! *= inv
  }
  return { indices, values }
}

/** Dense features of one word: a Float32Array of length `dim`. */
export function featurize(word: string, s: NgramSettings): Float32Array {
  const out = new Float32Array(s.dim)
  const { indices, values } = featurizeSparse(word, s)
  for (let i = 0; i < indices.length; i++) out[indices[i]!] = values[i]!
  return out
}

/** Dense features of many words, row-major [words.length, dim], ready for POST /predict or model.predict. */
export function featurizeBatch(words: readonly string[], s: NgramSettings): Float32Array {
  const out = new Float32Array(words.length * s.dim)
  words.forEach((w, r) => {
    const { indices, values } = featurizeSparse(w, s)
    for (let i = 0; i < indices.length; i++) out[r * s.dim + indices[i]!] = values[i]!
  })
  return out
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** Reads settings back from a manifest's `features` object; throws naming the first bad field. */
export function parseNgramSettings(raw: unknown): NgramSettings {
  const fail = (msg: string): never => {
    throw new Error(`features: ${msg}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('expected an object')
  const r = raw as Record<string, unknown>
  if (r.type !== 'char-ngrams') fail(`"type" must be "char-ngrams", got ${JSON.stringify(r.type)}`)
  if (r.version !== 1) fail(`"version" must be 1, got ${JSON.stringify(r.version)}`)
  if (!isNum(r.dim) || !Number.isInteger(r.dim) || r.dim < 1) fail(`"dim" must be a positive integer, got ${JSON.stringify(r.dim)}`)
  const orders = r.orders
  if (!Array.isArray(orders) || orders.length === 0 || !orders.every((n) => isNum(n) && Number.isInteger(n) && n >= 1 && n <= 8)) {
    fail(`"orders" must be a non-empty array of integers 1..8, got ${JSON.stringify(orders)}`)
  }
  if (!Array.isArray(r.weights) || !r.weights.every(isNum)) fail(`"weights" must be an array of numbers`)
  if (typeof r.skipBigrams !== 'boolean') fail('"skipBigrams" must be a boolean')
  if (!isNum(r.skipWeight)) fail('"skipWeight" must be a number')
  if (typeof r.signed !== 'boolean') fail('"signed" must be a boolean')
  if (typeof r.lowercase !== 'boolean') fail('"lowercase" must be a boolean')
  if (r.hash !== 'fnv1a32') fail(`"hash" must be "fnv1a32", got ${JSON.stringify(r.hash)}`)
  if (r.normalize !== 'l2' && r.normalize !== 'none') fail(`"normalize" must be "l2" or "none", got ${JSON.stringify(r.normalize)}`)
  return {
    type: 'char-ngrams',
    version: 1,
    dim: r.dim as number,
    orders: [...(orders as number[])],
    weights: [...(r.weights as number[])],
    skipBigrams: r.skipBigrams as boolean,
    skipWeight: r.skipWeight as number,
    signed: r.signed as boolean,
    lowercase: r.lowercase as boolean,
    hash: 'fnv1a32',
    normalize: r.normalize as 'l2' | 'none',
  }
}
