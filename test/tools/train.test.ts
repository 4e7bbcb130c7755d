// The trainer: typo generator, head sizes, learning a small task in seconds, and save/serve agreement
// (a bundle written by the trainer, loaded by the server's loader and engine, predicts what the model did).

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import t from 'tap'
import { loadBundle } from '../../src/engine/model-load.js'
import { writeBundle } from '../../tools/bundle/write.js'
import { exactTopK } from '../../src/mhe/codec.js'
import { Engine } from '../../src/engine/engine.js'
import { DEFAULT_NGRAMS, featurizeBatch, type NgramSettings } from '../../tools/features/ngrams.js'
import { toSparseBatch } from '../../tools/train/mlp.js'
import { COMMON_MISSPELLINGS, editDistance, filterPairs } from '../../tools/train/misspellings.js'
import { balancedHeads, evaluate, train, typoCases } from '../../tools/train/train.js'
import { labelPermutation } from '../../tools/train/order.js'
import { mulberry32, NEIGHBOURS, typo } from '../../tools/train/typos.js'
import { featurizeSparse } from '../../tools/features/ngrams.js'
import { loadWords } from '../../tools/train/words.js'

await tf.setBackend('wasm')

t.test('balancedHeads: smallest near-equal sizes whose product covers C', async (t) => {
  t.same(balancedHeads(61446, 2), [248, 248])
  t.same(balancedHeads(100, 2), [10, 10])
  t.same(balancedHeads(101, 2), [11, 10])
  t.same(balancedHeads(1000, 3), [10, 10, 10])
  t.same(balancedHeads(500, 1), [500])
  for (const [c, h] of [[61446, 3], [7, 2], [2, 2], [99_999, 4]] as const) {
    const heads = balancedHeads(c, h)
    t.ok(heads.reduce((a, n) => a * n, 1) >= c, `${heads.join('x')} covers ${c}`)
    t.ok(Math.max(...heads) - Math.min(...heads) <= 1)
  }
})

t.test('typos: seeded, never the word itself, mostly within two edits', async (t) => {
  const words = ['accommodate', 'their', 'separate', 'a', 'of', 'rhythm']
  const run = (seed: number) => {
    const rng = mulberry32(seed)
    return words.flatMap((w) => [typo(w, rng, 1), typo(w, rng, 2)])
  }
  t.same(run(7), run(7), 'same seed, same typos')
  t.not(run(7).join(), run(8).join(), 'other seed, other typos')
  const rng = mulberry32(3)
  let far = 0
  for (let i = 0; i < 500; i++) {
    const w = words[i % words.length]!
    const out = typo(w, rng, 1)
    t.not(out, w)
    if (editDistance(out, w) > 2) far++ // only phonetic swaps like ough/uff go past two
  }
  t.ok(far < 25, `${far} of 500 one-edit typos are more than two edits away`)
  t.ok(NEIGHBOURS.s!.includes('a') && NEIGHBOURS.s!.includes('d') && !NEIGHBOURS.s!.includes('p'))
})

t.test('word list: >= 50,000 lower-case words, commonest first, no duplicates', async (t) => {
  const { words } = loadWords(50)
  t.ok(words.length >= 50_000, `${words.length} words`)
  t.equal(new Set(words).size, words.length)
  t.ok(words.every((w) => /^[a-z]+$/.test(w)))
  t.ok(words.indexOf('their') < 5000 && words.includes('accommodate'))
  t.ok(filterPairs(COMMON_MISSPELLINGS, new Map(words.map((w, i) => [w, i]))).length >= 200)
})

t.test('grid label order: a permutation whose head-1 classes are alphabetical blocks, head 2 by ending', async (t) => {
  const words = loadWords(20).words.slice(0, 1000)
  t.same(labelPermutation(words, [32, 32], 'frequency'), words.map((_, i) => i))
  const perm = labelPermutation(words, [32, 32], 'grid')
  t.same([...perm].sort((a, b) => a - b), words.map((_, i) => i), 'every word once, ids 0..C-1')
  const labels = perm.map((i) => words[i]!)
  const alpha = [...words].sort()
  for (let y1 = 0; y1 < 32; y1++) {
    const block = labels.slice(y1 * 32, y1 * 32 + 32)
    t.same([...block].sort(), alpha.slice(y1 * 32, y1 * 32 + 32), `head-1 class ${y1} is an alphabetical block`)
    const ends = block.map((w) => [...w].reverse().join(''))
    t.same(ends, [...ends].sort(), `inside block ${y1}, head-2 ids follow the reversed spelling`)
  }
  const three = labelPermutation(words, [10, 10, 10], 'grid')
  t.equal(new Set(three).size, 1000)
})

const SMALL: NgramSettings = { ...DEFAULT_NGRAMS, dim: 1024 }

async function trainSmall() {
  const labels = loadWords(10).words.slice(0, 200)
  const run = await train({
    labels,
    features: SMALL,
    heads: [15, 14],
    hidden: [96],
    epochs: 10,
    batchSize: 64,
    lr: 0.01,
    seed: 1,
    typosPerWord: 2,
    twoEditShare: 0,
  })
  return { labels, ...run }
}

t.test('the trainer learns 200 labels with 2 heads in seconds, and saved = served', async (t) => {
  const { labels, model, epochs } = await trainSmall()
  t.teardown(() => model.dispose())
  t.ok(epochs[epochs.length - 1]!.loss < epochs[0]!.loss / 2, `loss ${epochs[0]!.loss} -> ${epochs[epochs.length - 1]!.loss}`)
  const clean = await evaluate(model, SMALL, labels.map((w, i) => ({ input: w, target: i })))
  t.ok(clean.top1 > 0.8, `clean top-1 ${clean.top1} (chance 0.005)`)
  const typos = await evaluate(model, SMALL, typoCases(labels, 200, 1, 42))
  t.ok(typos.top5 > 0.3, `one-edit top-5 ${typos.top5} (chance 0.025)`)

  // In memory: the trainer's own (sparse) forward pass and the LayersModel built from it.
  const words = ['their', 'thier', 'about', 'abuot', 'people', 'peeple', 'would', 'wuold']
  const fromTrainer = await model.topK(toSparseBatch(words.map((w) => featurizeSparse(w, SMALL))), 5)
  const layers = await model.toLayersModel()
  const x = featurizeBatch(words, SMALL)
  const logits = layers.predict(tf.tensor2d(x, [words.length, SMALL.dim])) as tf.Tensor2D
  const rows = (await logits.array()) as number[][]
  logits.dispose()
  const logSoftmax = (r: number[]) => {
    const m = Math.max(...r)
    const lse = m + Math.log(r.reduce((a, v) => a + Math.exp(v - m), 0))
    return r.map((v) => v - lse)
  }
  const inMemory = rows.map((r) => exactTopK([logSoftmax(r.slice(0, 15)), logSoftmax(r.slice(15))], [15, 14], labels.length, 5))
  t.same(inMemory.map((c) => c.map((x) => x.id)), fromTrainer.map((c) => c.map((x) => x.id)), 'sparse training path = dense model')

  const dir = await mkdtemp(join(tmpdir(), 'mhe-train-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeBundle(dir, {
    manifest: { name: 't', version: '1', featureDim: SMALL.dim, heads: [15, 14], numLabels: labels.length, outputs: 'logits', features: { ...SMALL } },
    model: layers,
    labels,
  })
  layers.dispose()
  const bundle = await loadBundle(dir)
  const engine = await Engine.create(bundle, tf.getBackend())
  t.teardown(() => engine.dispose())
  const served = await engine.predict(x, words.length, words.map(() => 5))
  t.same(served.map((c) => c.map((x) => x.id)), inMemory.map((c) => c.map((x) => x.id)), 'served top-5 ids = in-memory top-5 ids')
  served.forEach((c, i) => c.forEach((cand, j) => t.ok(Math.abs(cand.logScore - inMemory[i]![j]!.logScore) < 1e-4, `score ${i}.${j}`)))
  t.equal(bundle.labels.name(served[0]![0]!.id), labels[inMemory[0]![0]!.id])
  t.same(bundle.manifest.features, SMALL, 'featurizer settings travel in mhe.json')
})

t.test('same seed, same model', async (t) => {
  const a = await trainSmall()
  const b = await trainSmall()
  const words = ['thier', 'abuot']
  const pa = await a.model.topK(toSparseBatch(words.map((w) => featurizeSparse(w, SMALL))), 3)
  const pb = await b.model.topK(toSparseBatch(words.map((w) => featurizeSparse(w, SMALL))), 3)
  t.same(pa, pb)
  a.model.dispose()
  b.model.dispose()
})
