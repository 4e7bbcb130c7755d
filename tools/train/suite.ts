// The evaluation suite every trained model is scored on (clean words, held-out generated typos with one and
// two edits, real misspellings), and the label/feature setup shared by the train and compare commands.

import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import type { NgramSettings } from '../features/ngrams.js'
import type { MheMlp } from './mlp.js'
import { COMMON_MISSPELLINGS, filterPairs, wikipediaPairs } from './misspellings.js'
import { evaluate, typoCases, type EvalCase, type EvalResult } from './train.js'
import { mulberry32, randInt } from './typos.js'

export async function useBackend(name: string): Promise<string> {
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} could not be initialised`)
  await tf.ready()
  return tf.getBackend()
}

export interface SuiteOptions {
  /** Clean words scored: all labels when >= numLabels, else a seeded sample. */
  cleanCount: number
  /** Generated typos per set (one-edit, two-edit). */
  typoCount: number
  /** Ids the typo targets are drawn from (the common words); all labels when absent. */
  common?: readonly number[]
  /** Seed of the held-out sets; differs from any training seed stream. */
  seed: number
}

export interface SuiteResult {
  clean: EvalResult
  typo1: EvalResult
  typo2: EvalResult
  /** Hand-written list of commonly misspelled words (tools/train/misspellings.ts). */
  common: EvalResult
  /** Wikipedia's list of common misspellings, 1-2 edits, targets among the labels. */
  wikipedia: EvalResult
}

export function suiteCases(labels: readonly string[], o: SuiteOptions): Record<keyof SuiteResult, EvalCase[]> {
  const ids = new Map(labels.map((w, i) => [w, i]))
  const rng = mulberry32(o.seed)
  const clean: EvalCase[] =
    o.cleanCount >= labels.length
      ? labels.map((w, i) => ({ input: w, target: i }))
      : Array.from({ length: o.cleanCount }, () => {
          const i = randInt(rng, labels.length)
          return { input: labels[i]!, target: i }
        })
  const toCases = (pairs: [string, string][]) => filterPairs(pairs, ids).map((m) => ({ input: m.input, target: ids.get(m.target)! }))
  return {
    clean,
    typo1: typoCases(labels, o.typoCount, 1, o.seed + 1, o.common),
    typo2: typoCases(labels, o.typoCount, 2, o.seed + 2, o.common),
    common: toCases([...COMMON_MISSPELLINGS]),
    wikipedia: toCases(wikipediaPairs()),
  }
}

export async function runSuite(model: MheMlp, features: NgramSettings, labels: readonly string[], o: SuiteOptions): Promise<SuiteResult> {
  const cases = suiteCases(labels, o)
  const out: Partial<SuiteResult> = {}
  for (const key of Object.keys(cases) as (keyof SuiteResult)[]) out[key] = await evaluate(model, features, cases[key])
  return out as SuiteResult
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`

export function formatSuite(r: SuiteResult): string {
  return [
    `clean top1 ${pct(r.clean.top1)} top5 ${pct(r.clean.top5)} (n=${r.clean.n})`,
    `typo1 top1 ${pct(r.typo1.top1)} top5 ${pct(r.typo1.top5)} (n=${r.typo1.n})`,
    `typo2 top1 ${pct(r.typo2.top1)} top5 ${pct(r.typo2.top5)} (n=${r.typo2.n})`,
    `common-misspellings top1 ${pct(r.common.top1)} top5 ${pct(r.common.top5)} (n=${r.common.n})`,
    `wikipedia top1 ${pct(r.wikipedia.top1)} top5 ${pct(r.wikipedia.top5)} (n=${r.wikipedia.n})`,
  ].join('\n')
}
