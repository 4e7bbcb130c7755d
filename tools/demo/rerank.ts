// Re-ranking of the model's top candidates for a typed word: the model proposes (its top-k by MHE score), and a
// noisy-channel score picks: model log-score + weight x log word frequency - weight x spelling-error cost. The
// bundle's mhe.json (`features.rerank`) holds the weights and names the frequency file; the demo applies it.

import { readFile } from 'node:fs/promises'
import { NEIGHBOURS } from '../train/typos.js'

export interface RerankSettings {
  /** How many candidates to ask the model for. */
  candidates: number
  /** Per-label natural-log frequency prior, one number a line aligned with labels.txt, relative to the bundle. */
  prior: string
  modelWeight: number
  priorWeight: number
  editWeight: number
  /** Softmax temperature over the re-ranked scores, for the reported confidence. */
  temperature: number
  /**
   * Score of "none of these" in that softmax: when every candidate scores far below it (a string far from any
   * word), no candidate gets a high confidence.
   */
  noneScore: number
  /** Below this confidence the demo says "not sure". */
  threshold: number
}

export interface Scored {
  label: string
  /** Confidence: softmax share of this candidate's re-ranked score among all candidates. */
  score: number
  /** The model's own score (product of the heads' probabilities). */
  modelScore: number
}

const VOWELS = new Set('aeiouy')
/** Letter pairs people swap by sound (c/s in "consience", s/z, c/k, i/y, g/j). */
const SOUND_ALIKE = new Set(['cs', 'sc', 'ck', 'kc', 'sz', 'zs', 'iy', 'yi', 'gj', 'jg', 'fv', 'vf', 'mn', 'nm'])

function substituteCost(a: string, b: string): number {
  if (a === b) return 0
  if (VOWELS.has(a) && VOWELS.has(b)) return 0.6
  if (SOUND_ALIKE.has(a + b)) return 0.6
  if (NEIGHBOURS[a]?.includes(b) === true) return 0.8
  return 1
}

/** Cost of letter c inserted in (or dropped from) a word next to prev/next: doubling a letter is a cheap error. */
function indelCost(c: string, prev: string | undefined, next: string | undefined): number {
  if (c === prev || c === next) return 0.4
  if (VOWELS.has(c)) return 0.8
  return 1
}

/**
 * Weighted optimal-string-alignment distance from the intended word to what was typed: cheap for the errors people
 * make most (vowel swaps, doubled or dropped double letters, transpositions, sound-alike letters, keyboard
 * neighbours), with a surcharge when the first letter differs (people rarely get it wrong).
 */
export function errorCost(typed: string, intended: string): number {
  const a = intended
  const b = typed
  const n = a.length
  const m = b.length
  const w = m + 1
  const d = new Float64Array((n + 1) * w)
  for (let j = 1; j <= m; j++) d[j] = d[j - 1]! + indelCost(b[j - 1]!, b[j - 2], b[j])
  for (let i = 1; i <= n; i++) {
    d[i * w] = d[(i - 1) * w]! + indelCost(a[i - 1]!, a[i - 2], a[i])
    for (let j = 1; j <= m; j++) {
      const ca = a[i - 1]!
      const cb = b[j - 1]!
      let v = d[(i - 1) * w + j - 1]! + substituteCost(ca, cb)
      v = Math.min(v, d[(i - 1) * w + j]! + indelCost(ca, a[i - 2], a[i]))
      v = Math.min(v, d[i * w + j - 1]! + indelCost(cb, b[j - 2], b[j]))
      if (i > 1 && j > 1 && ca === b[j - 2] && a[i - 2] === cb) v = Math.min(v, d[(i - 2) * w + j - 2]! + 0.6)
      d[i * w + j] = v
    }
  }
  const firstDiffers = n > 0 && m > 0 && a[0] !== b[0] ? 0.5 : 0
  return d[n * w + m]! + firstDiffers
}

/**
 * Re-ranks the model's candidates for `typed`: returns them best first with a confidence each. `prior` maps a
 * label to its log-frequency prior (missing labels get the lowest prior seen).
 */
export function rerank(
  typed: string,
  candidates: readonly { label: string; score: number }[],
  prior: (label: string) => number,
  s: Pick<RerankSettings, 'modelWeight' | 'priorWeight' | 'editWeight' | 'temperature' | 'noneScore'>,
): Scored[] {
  const word = typed.toLowerCase()
  const raw = candidates.map((c) => {
    const logModel = Math.log(Math.max(c.score, 1e-30))
    return { c, v: s.modelWeight * logModel + s.priorWeight * prior(c.label) - s.editWeight * errorCost(word, c.label) }
  })
  const best = raw.reduce((mx, r) => Math.max(mx, r.v), s.noneScore)
  let sum = Math.exp((s.noneScore - best) / s.temperature)
  const exps = raw.map((r) => {
    const e = Math.exp((r.v - best) / s.temperature)
    sum += e
    return e
  })
  return raw
    .map((r, i) => ({ label: r.c.label, score: exps[i]! / sum, modelScore: r.c.score, v: r.v }))
    .sort((x, y) => y.v - x.v)
    .map(({ label, score, modelScore }) => ({ label, score, modelScore }))
}

/** Reads re-rank settings from a manifest's `features.rerank`, or undefined when the bundle has none. */
export function parseRerankSettings(features: unknown): RerankSettings | undefined {
  if (typeof features !== 'object' || features === null) return undefined
  const r = (features as { rerank?: unknown }).rerank
  if (r === undefined) return undefined
  if (typeof r !== 'object' || r === null) throw new Error('features.rerank: expected an object')
  const o = r as Record<string, unknown>
  const num = (k: string): number => {
    const v = o[k]
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`features.rerank: "${k}" must be a number, got ${JSON.stringify(v)}`)
    return v
  }
  if (typeof o.prior !== 'string' || o.prior.length === 0) throw new Error('features.rerank: "prior" must name a file')
  return {
    candidates: num('candidates'),
    prior: o.prior,
    modelWeight: num('modelWeight'),
    priorWeight: num('priorWeight'),
    editWeight: num('editWeight'),
    temperature: num('temperature'),
    noneScore: num('noneScore'),
    threshold: num('threshold'),
  }
}

/** A bundle's log-frequency prior file (one number a line, aligned with labels) as a lookup. */
export async function loadPrior(file: string, labels: readonly string[]): Promise<(label: string) => number> {
  const values = (await readFile(file, 'utf8')).split('\n').slice(0, labels.length).map(Number)
  const floor = Math.min(...values.filter(Number.isFinite))
  const map = new Map(labels.map((l, i) => [l, Number.isFinite(values[i]) ? values[i]! : floor]))
  return (label) => map.get(label) ?? floor
}
