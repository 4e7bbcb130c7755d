// Fits the demo's re-ranker (tools/demo/rerank.ts) to a trained bundle: writes the frequency prior next to the
// labels and picks the score weights, the confidence temperature and the "not sure" threshold on a tuning set
// that holds no entry of the evaluation list: fresh generated misspellings of common words, the hand-written
// misspellings whose misspelt form is not in Wikipedia's list, and clean words.

import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MANIFEST_FILE } from '../../src/bundle/manifest.js'
import { errorCost, type RerankSettings } from '../demo/rerank.js'
import { loadLocalModel } from '../demo/local.js'
import { COMMON_MISSPELLINGS, wikipediaPairs } from './misspellings.js'
import { frequencyPrior } from './prior.js'
import { mulberry32, randInt, typo } from './typos.js'
import { loadWords } from './words.js'

export const PRIOR_FILE = 'prior.txt'
/**
 * How many of the model's candidates the demo re-ranks: the fit tries each and keeps the smallest whose tuning
 * objective is within 0.1 point of the best (more candidates find more right words the model ranks low, at the
 * cost of a longer answer). The server's default MHE_MAX_TOP_K (300) admits the largest.
 */
const CANDIDATE_CHOICES = [100, 200, 300]
const PRIOR_WEIGHTS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5]
const EDIT_WEIGHTS = [0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]
const MODEL_WEIGHTS = [0.05, 0.1, 0.15, 0.25, 0.5, 1]

interface TuneCase {
  set: 'typo' | 'real' | 'clean' | 'nonsense'
  /** Per candidate: log model score, log prior, error cost; and the index of the target (-1 if absent). */
  logModel: Float64Array
  prior: Float64Array
  cost: Float64Array
  target: number
}

export interface RerankFit {
  settings: RerankSettings
  tuning: Record<string, unknown>
}

/** The tuning cases: [typed, intended] pairs by set, none of whose typed forms is in Wikipedia's list. */
export function tuningPairs(labels: readonly string[], seed = 20_261_130): { set: TuneCase['set']; typed: string; intended: string }[] {
  const evalInputs = new Set(wikipediaPairs().map(([w]) => w))
  const labelSet = new Set(labels)
  const common = loadWords(35, ['english', 'american', 'british']).words.filter((w) => labelSet.has(w))
  const rng = mulberry32(seed)
  const out: { set: TuneCase['set']; typed: string; intended: string }[] = []
  for (let i = 0; i < 1500; i++) {
    const w = common[randInt(rng, common.length)]!
    const t = typo(w, rng, i % 4 === 3 ? 2 : 1)
    if (!labelSet.has(t) && !evalInputs.has(t)) out.push({ set: 'typo', typed: t, intended: w })
  }
  const seen = new Set<string>()
  for (const [t, w] of COMMON_MISSPELLINGS) {
    if (seen.has(t) || evalInputs.has(t) || !labelSet.has(w) || labelSet.has(t)) continue
    seen.add(t)
    out.push({ set: 'real', typed: t, intended: w })
  }
  for (let i = 0; i < 1000; i++) {
    const w = labels[randInt(rng, labels.length)]!
    out.push({ set: 'clean', typed: w, intended: w })
  }
  // Random letter strings, far from any word: the right answer is "not sure".
  for (let i = 0; i < 300; i++) {
    const t = Array.from({ length: 4 + randInt(rng, 7) }, () => 'abcdefghijklmnopqrstuvwxyz'[randInt(rng, 26)]!).join('')
    if (!labelSet.has(t)) out.push({ set: 'nonsense', typed: t, intended: '' })
  }
  return out
}

function top1(c: TuneCase, wm: number, wp: number, we: number): number {
  let best = 0
  let bestV = -Infinity
  for (let i = 0; i < c.logModel.length; i++) {
    const v = wm * c.logModel[i]! + wp * c.prior[i]! - we * c.cost[i]!
    if (v > bestV) {
      bestV = v
      best = i
    }
  }
  return best
}

/** Fits the re-ranker to the bundle in `dir` (writes prior.txt and features.rerank into mhe.json). */
export async function fitRerank(dir: string, log: (s: string) => void = () => {}): Promise<RerankFit> {
  const model = await loadLocalModel(dir)
  const prior = frequencyPrior(model.labels)
  await writeFile(join(dir, PRIOR_FILE), prior.map(String).join('\n') + '\n')
  const priorOf = new Map(model.labels.map((l, i) => [l, prior[i]!]))
  const pairs = tuningPairs(model.labels)
  const cands = await model.candidates(pairs.map((p) => p.typed), Math.max(...CANDIDATE_CHOICES))
  model.dispose()
  const full: TuneCase[] = pairs.map((p, i) => {
    const cs = cands[i]!
    return {
      set: p.set,
      logModel: Float64Array.from(cs, (c) => Math.log(Math.max(c.score, 1e-30))),
      prior: Float64Array.from(cs, (c) => priorOf.get(c.label) ?? 0),
      cost: Float64Array.from(cs, (c) => errorCost(p.typed, c.label)),
      target: cs.findIndex((c) => c.label === p.intended),
    }
  })
  /** The cases as the first k candidates see them. */
  const firstK = (k: number): TuneCase[] =>
    full.map((c) => ({ ...c, logModel: c.logModel.subarray(0, k), prior: c.prior.subarray(0, k), cost: c.cost.subarray(0, k), target: c.target < k ? c.target : -1 }))
  const acc = (cs: TuneCase[], wm: number, wp: number, we: number) => cs.filter((c) => c.target >= 0 && top1(c, wm, wp, we) === c.target).length / Math.max(1, cs.length)
  let best = { k: 0, wm: 1, wp: 0, we: 0, objective: -1, typo: 0, real: 0, clean: 0 }
  for (const k of CANDIDATE_CHOICES) {
    const cases = firstK(k)
    const bySet = (set: TuneCase['set']) => cases.filter((c) => c.set === set)
    const sets = { typo: bySet('typo'), real: bySet('real'), clean: bySet('clean') }
    for (const wm of MODEL_WEIGHTS) {
      for (const wp of PRIOR_WEIGHTS) {
        for (const we of EDIT_WEIGHTS) {
          const clean = acc(sets.clean, wm, wp, we)
          if (clean < 0.99) continue
          const typo = acc(sets.typo, wm, wp, we)
          const real = acc(sets.real, wm, wp, we)
          // Real misspellings are what users type; generated ones keep the fit from chasing a short list.
          const objective = 0.5 * typo + 0.5 * real
          if (objective > best.objective + (k > best.k && best.k > 0 ? 0.001 : 0)) best = { k, wm, wp, we, objective, typo, real, clean }
        }
      }
    }
  }
  const cases = firstK(best.k)
  const bySet = (set: TuneCase['set']) => cases.filter((c) => c.set === set)
  const sets = { typo: bySet('typo'), real: bySet('real'), clean: bySet('clean'), nonsense: bySet('nonsense') }
  log(`re-rank fit: ${best.k} candidates, model x${best.wm}, prior x${best.wp}, edit cost x${best.we}: tuning top-1 generated ${(100 * best.typo).toFixed(1)}%, ` +
    `hand-written ${(100 * best.real).toFixed(1)}%, clean ${(100 * best.clean).toFixed(1)}% (n ${sets.typo.length}/${sets.real.length}/${sets.clean.length})`)
  // Temperature and "none of these" score: those that make the softmax over the re-ranked scores best predict
  // the right answer (least NLL), where the right answer of nonsense, or of a word the model did not offer, is none.
  const scores = (c: TuneCase) => Array.from(c.logModel, (m, i) => best.wm * m + best.wp * c.prior[i]! - best.we * c.cost[i]!)
  /** Confidences of the candidates, then of "none" last. */
  const confidences = (c: TuneCase, t: number, none: number) => {
    const v = [...scores(c), none]
    const mx = Math.max(...v)
    const e = v.map((x) => Math.exp((x - mx) / t))
    const sum = e.reduce((a, b) => a + b, 0)
    return e.map((x) => x / sum)
  }
  const all = [...sets.typo, ...sets.real, ...sets.clean, ...sets.nonsense]
  let temperature = 1
  let noneScore = -Infinity
  let bestNll = Infinity
  for (const t of [0.35, 0.5, 0.7, 1, 1.4, 2, 2.8, 4]) {
    for (let none = -40; none <= 0; none += 1) {
      const nll = all.reduce((a, c) => {
        const conf = confidences(c, t, none)
        return a - Math.log(Math.max(conf[c.target >= 0 ? c.target : conf.length - 1]!, 1e-12))
      }, 0) / all.length
      if (nll < bestNll) {
        bestNll = nll
        temperature = t
        noneScore = none
      }
    }
  }
  // Threshold: the lowest confidence at which the answers above it are right at least 90% of the time on the
  // misspellings (clean words are nearly always right and would flatter it).
  const answers = [...sets.typo, ...sets.real].map((c) => {
    const conf = confidences(c, temperature, noneScore)
    const i = top1(c, best.wm, best.wp, best.we)
    return { conf: conf[i]!, right: i === c.target }
  })
  answers.sort((x, y) => y.conf - x.conf)
  let threshold = 1
  let right = 0
  answers.forEach((a, i) => {
    if (a.right) right++
    if (right / (i + 1) >= 0.9) threshold = a.conf
  })
  threshold = Math.floor(threshold * 100) / 100
  const settings: RerankSettings = {
    candidates: best.k,
    prior: PRIOR_FILE,
    modelWeight: best.wm,
    priorWeight: best.wp,
    editWeight: best.we,
    temperature,
    noneScore,
    threshold,
  }
  const tuning = {
    cases: { generated: sets.typo.length, handWritten: sets.real.length, clean: sets.clean.length, nonsense: sets.nonsense.length },
    top1: { generated: best.typo, handWritten: best.real, clean: best.clean },
    nll: bestNll,
    aboveThreshold: answers.filter((a) => a.conf >= threshold).length / answers.length,
    nonsenseAboveThreshold: sets.nonsense.filter((c) => {
      const conf = confidences(c, temperature, noneScore)
      return conf[top1(c, best.wm, best.wp, best.we)]! >= threshold
    }).length / Math.max(1, sets.nonsense.length),
  }
  log(`re-rank fit: temperature ${temperature}, none-of-these score ${noneScore} (NLL ${bestNll.toFixed(3)}), "not sure" below ${threshold} ` +
    `(${(100 * tuning.aboveThreshold).toFixed(1)}% of the tuning misspellings and ` +
    `${(100 * tuning.nonsenseAboveThreshold).toFixed(1)}% of the nonsense strings answered above it)`)
  const file = join(dir, MANIFEST_FILE)
  const manifest = JSON.parse(await readFile(file, 'utf8')) as { features: Record<string, unknown>; training?: Record<string, unknown> }
  manifest.features.rerank = settings
  manifest.training = { ...manifest.training, rerankFit: tuning }
  await writeFile(file, JSON.stringify(manifest, null, 2) + '\n')
  return { settings, tuning }
}
