// Training loop of the spelling demo: each epoch draws fresh typos of every label, shuffles, and runs Adam
// steps with a cosine learning-rate decay; plus the head-size helper and the top-k evaluation used everywhere.

import { featurizeSparse, type NgramSettings, type SparseVector } from '../features/ngrams.js'
import { idSpace } from '../../src/mhe/codec.js'
import { MheMlp, toSparseBatch } from './mlp.js'
import { mulberry32, randInt, typo, type Rng } from './typos.js'

/** H head sizes, as equal as possible, whose product covers numLabels (the smallest such sizes). */
export function balancedHeads(numLabels: number, numHeads: number): number[] {
  if (!Number.isInteger(numHeads) || numHeads < 1) throw new Error(`number of heads must be a positive integer, got ${numHeads}`)
  if (numHeads === 1) return [numLabels]
  const base = Math.max(2, Math.floor(Math.pow(numLabels, 1 / numHeads)))
  const heads = new Array<number>(numHeads).fill(base)
  // Grow the heads one at a time, head 1 first, until they cover numLabels.
  for (let h = 0; idSpace(heads) < numLabels; h = (h + 1) % numHeads) heads[h]!++
  return heads
}

export interface TrainOptions {
  labels: readonly string[]
  features: NgramSettings
  heads: number[]
  hidden: number[]
  epochs: number
  batchSize: number
  lr: number
  seed: number
  /** Typo samples per label per epoch (besides the clean word). */
  typosPerWord: number
  /** Ids of the commonest words: they get twice the typo samples. */
  common?: ReadonlySet<number>
  /** Typo samples per epoch for each label id; overrides typosPerWord and common (e.g. more for frequent words). */
  typoCounts?: readonly number[]
  /** Share of typo samples with two edits (the rest have one). */
  twoEditShare: number
}

export interface EpochStats {
  epoch: number
  loss: number
  accuracy: number
  seconds: number
  samples: number
}

export interface TrainHooks {
  onStep?: (done: number, total: number, loss: number, accuracy: number) => void
  /** After each epoch, with the model as it stands (e.g. to save a checkpoint). */
  onEpoch?: (stats: EpochStats, model: MheMlp) => void | Promise<void>
}

function shuffle<T>(xs: T[], rng: Rng): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1)
    const t = xs[i]!
    xs[i] = xs[j]!
    xs[j] = t
  }
}

/** One epoch's samples: every label once clean plus its typos; [input word, label id]. */
type SampleOptions = Pick<TrainOptions, 'labels' | 'typosPerWord' | 'common' | 'typoCounts' | 'twoEditShare'>

/** Typo samples per epoch of label `id`. */
const typosFor = (o: SampleOptions, id: number): number =>
  o.typoCounts?.[id] ?? (o.common?.has(id) === true ? 2 * o.typosPerWord : o.typosPerWord)

export function epochSamples(opts: SampleOptions, rng: Rng): [string, number][] {
  const out: [string, number][] = []
  opts.labels.forEach((w, id) => {
    out.push([w, id])
    const k = typosFor(opts, id)
    for (let i = 0; i < k; i++) out.push([typo(w, rng, rng() < opts.twoEditShare ? 2 : 1), id])
  })
  shuffle(out, rng)
  return out
}

/** Trains a model from scratch; returns it with per-epoch stats and the seconds spent. */
export async function train(opts: TrainOptions, hooks: TrainHooks = {}): Promise<{ model: MheMlp; epochs: EpochStats[]; seconds: number }> {
  const model = new MheMlp({
    featureDim: opts.features.dim,
    hidden: opts.hidden,
    heads: opts.heads,
    numLabels: opts.labels.length,
    seed: opts.seed,
  })
  const rng = mulberry32(opts.seed ^ 0x5eed)
  const clean: SparseVector[] = opts.labels.map((w) => featurizeSparse(w, opts.features))
  const perEpoch = opts.labels.reduce((a, _w, id) => a + 1 + typosFor(opts, id), 0)
  const stepsPerEpoch = Math.ceil(perEpoch / opts.batchSize)
  const totalSteps = stepsPerEpoch * opts.epochs
  const stats: EpochStats[] = []
  const start = performance.now()
  let stepNo = 0
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const t0 = performance.now()
    const samples = epochSamples(opts, rng)
    let lossSum = 0
    let accSum = 0
    let seen = 0
    for (let s = 0; s < samples.length; s += opts.batchSize) {
      const chunk = samples.slice(s, s + opts.batchSize)
      const batch = toSparseBatch(chunk.map(([w, id]) => (w === opts.labels[id] ? clean[id]! : featurizeSparse(w, opts.features))))
      const labels = Int32Array.from(chunk, ([, id]) => id)
      // Cosine decay to 5% of the initial rate over the whole run.
      const lr = opts.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * stepNo) / totalSteps)))
      const r = await model.step(batch, labels, lr)
      stepNo++
      lossSum += r.loss * chunk.length
      accSum += r.accuracy * chunk.length
      seen += chunk.length
      hooks.onStep?.(stepNo, totalSteps, lossSum / seen, accSum / seen)
    }
    const st = { epoch, loss: lossSum / seen, accuracy: accSum / seen, seconds: (performance.now() - t0) / 1000, samples: seen }
    stats.push(st)
    await hooks.onEpoch?.(st, model)
  }
  return { model, epochs: stats, seconds: (performance.now() - start) / 1000 }
}

export interface EvalCase {
  input: string
  /** Label id of the right answer. */
  target: number
}

export interface EvalResult {
  n: number
  top1: number
  top5: number
}

/** Top-1 and top-5 accuracy of `model` on cases, in batches. */
export async function evaluate(model: MheMlp, features: NgramSettings, cases: readonly EvalCase[], batchSize = 512): Promise<EvalResult> {
  let top1 = 0
  let top5 = 0
  for (let s = 0; s < cases.length; s += batchSize) {
    const chunk = cases.slice(s, s + batchSize)
    const preds = await model.topK(toSparseBatch(chunk.map((c) => featurizeSparse(c.input, features))), 5)
    preds.forEach((p, i) => {
      const t = chunk[i]!.target
      if (p[0]?.id === t) top1++
      if (p.some((c) => c.id === t)) top5++
    })
  }
  const n = cases.length
  return { n, top1: n === 0 ? 0 : top1 / n, top5: n === 0 ? 0 : top5 / n }
}

/** Held-out typo cases: `count` labels drawn from `pool` (default all ids), misspelt with `edits` edits by `seed`. */
export function typoCases(labels: readonly string[], count: number, edits: number, seed: number, pool?: readonly number[]): EvalCase[] {
  const rng = mulberry32(seed)
  const out: EvalCase[] = []
  for (let i = 0; i < count; i++) {
    const target = pool === undefined ? randInt(rng, labels.length) : pool[randInt(rng, pool.length)]!
    out.push({ input: typo(labels[target]!, rng, edits), target })
  }
  return out
}
