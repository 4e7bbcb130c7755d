// Engine: agreement with a plain-loop brute force on bundles with known weights, ids past C, OHE, probabilities,
// input checks, and no tensor leaks.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import type { Candidate } from '../../src/mhe/codec.js'
import { selectBackend } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine } from '../../src/engine/engine.js'
import { BundleError } from '../../src/errors.js'
import {
  makeGraphBundle,
  makeHeadsBundle,
  randomFeatures,
  referenceLogProbs,
  referenceTopK,
  type HeadWeights,
  type HeadsBundleOptions,
  type MadeBundle,
} from '../helpers/bundles.js'

const quiet = { info() {}, warn() {} }
const root = t.testdir({})
let backend = ''
t.before(async () => {
  backend = (await selectBackend('wasm', quiet)).name
})

let count = 0
async function engineFor(made: MadeBundle): Promise<Engine> {
  const e = await Engine.create(await loadBundle(made.dir), backend)
  t.teardown(() => e.dispose())
  return e
}
const build = (o: HeadsBundleOptions) => makeHeadsBundle(join(root, `b${++count}`), o)

/**
 * Checks `got` against the brute-force reference. Scores are float32 on the backend and float64 here, so where
 * two reference scores are within 1e-4 either order is accepted; the ids must still score what the rank demands.
 */
function agrees(t: Test, got: Candidate[], x: Float32Array, made: MadeBundle, k: number, what: string): void {
  const { heads, numLabels } = made.manifest
  const ref = referenceTopK(x, made.weights, heads, numLabels, k)
  t.equal(got.length, ref.length, `${what}: ${ref.length} results`)
  const lp = referenceLogProbs(x, made.weights, heads)
  const scoreOf = (headIds: number[]) => headIds.reduce((a, y, h) => a + lp[h]![y]!, 0)
  let exact = 0
  got.forEach((c, j) => {
    const r = ref[j]!
    if (c.id === r.id) exact++
    else t.ok(Math.abs(scoreOf(c.headIds) - r.logScore) < 1e-4, `${what}: rank ${j} id ${c.id} ties with reference id ${r.id}`)
    t.ok(c.id < numLabels, `${what}: id ${c.id} < ${numLabels}`)
    t.equal(c.id, c.headIds.reduce((a, y, h) => a * heads[h]! + y, 0), `${what}: headIds compose to the id`)
    t.ok(Math.abs(c.logScore - r.logScore) < 1e-4, `${what}: rank ${j} score ${c.logScore} ~ ${r.logScore}`)
  })
  t.equal(new Set(got.map((c) => c.id)).size, got.length, `${what}: distinct ids`)
  if (exact !== got.length) t.comment(`${what}: ${got.length - exact} near-tie(s) ordered differently`)
}

async function checkRandom(t: Test, e: Engine, made: MadeBundle, seed: number, what: string): Promise<void> {
  const d = made.manifest.featureDim
  const ks = [1, 3, 10]
  const n = 24
  const x = randomFeatures(n, d, seed)
  const topK = Array.from({ length: n }, (_, i) => ks[i % 3]!)
  const out = await e.predict(x, n, topK)
  t.equal(out.length, n)
  out.forEach((got, i) => agrees(t, got, x.subarray(i * d, (i + 1) * d), made, topK[i]!, `${what} #${i} k=${topK[i]}`))
  // Each k alone in its own batch gives the same answers.
  for (const k of ks) {
    const alone = await e.predict(x, n, new Array<number>(n).fill(k))
    alone.forEach((got, i) => agrees(t, got, x.subarray(i * d, (i + 1) * d), made, k, `${what} batch k=${k} #${i}`))
  }
}

const shape = { featureDim: 8, heads: [4, 5, 3], numLabels: 50 }

t.test('split, concat and graph bundles agree with the brute force', async (t) => {
  for (const outputs of ['split', 'concat'] as const) {
    const made = await build({ ...shape, outputs, seed: 11 })
    await checkRandom(t, await engineFor(made), made, 3, outputs)
  }
  const g = await makeGraphBundle(join(root, 'graph'), { ...shape, seed: 12 })
  await checkRandom(t, await engineFor(g), g, 4, 'graph')
})

t.test('probabilities outputs agree with the brute force', async (t) => {
  for (const outputs of ['split', 'concat'] as const) {
    const made = await build({ ...shape, outputs, activation: 'probabilities', seed: 21 })
    t.equal(made.manifest.outputs, 'probabilities')
    await checkRandom(t, await engineFor(made), made, 5, `probabilities ${outputs}`)
  }
})

t.test('a single head [C] is plain one-hot classification', async (t) => {
  const made = await build({ featureDim: 6, heads: [40], numLabels: 40, seed: 31 })
  await checkRandom(t, await engineFor(made), made, 6, 'OHE')
})

t.test('more heads, larger k', async (t) => {
  const made = await build({ featureDim: 5, heads: [3, 4, 2, 5], numLabels: 100, seed: 41, outputs: 'concat' })
  const e = await engineFor(made)
  const x = randomFeatures(4, 5, 9)
  const out = await e.predict(x, 4, [25, 1, 100, 120])
  out.forEach((got, i) => agrees(t, got, x.subarray(i * 5, i * 5 + 5), made, [25, 1, 100, 120][i]!, `#${i}`))
  t.equal(out[3]!.length, 100, 'k above C returns all C labels')
})

/** Weights with a zero kernel: the outputs are the biases, so the ranking is set by hand. */
function biasOnly(featureDim: number, biases: number[][]): HeadWeights {
  return {
    kernel: biases.map((b) => new Float32Array(featureDim * b.length)),
    bias: biases.map((b) => Float32Array.from(b)),
  }
}

t.test('the raw argmax composing to an id >= C gives the best valid label', async (t) => {
  // heads [4, 4], C = 10: raw argmax (3, 2) composes to 14.
  const biases = [
    [0, 1, 2, 10],
    [0, 1, 5, 0],
  ]
  for (const outputs of ['split', 'concat'] as const) {
    const made = await build({ featureDim: 3, heads: [4, 4], numLabels: 10, outputs, weights: biasOnly(3, biases) })
    const e = await engineFor(made)
    const x = randomFeatures(2, 3, 1)
    const raw = referenceLogProbs(x.subarray(0, 3), made.weights, [4, 4]).map((row) => row.indexOf(Math.max(...row)))
    t.strictSame(raw, [3, 2], 'the raw per-head argmax')
    t.ok(raw[0]! * 4 + raw[1]! >= 10, 'composes to an id past C')
    for (const k of [1, 3, 10, 12]) {
      const [got] = await e.predict(x.subarray(0, 3), 1, [k])
      agrees(t, got!, x.subarray(0, 3), made, k, `${outputs} k=${k}`)
    }
    const [best] = await e.predict(x.subarray(0, 3), 1, [1])
    t.equal(best![0]!.id, 6, 'best valid is (1, 2) = 6: head 1 may only use 0..2, and (2, 2) = 10 is past C')
    const [all] = await e.predict(x.subarray(0, 3), 1, [12])
    t.equal(all!.length, 10, 'only C labels exist')
  }
})

t.test('ids past C crowding every candidate, and a single head larger than C', async (t) => {
  // heads [2, 50], C = 51: head 1 strongly prefers 1, whose ids 50..99 are all past C except 50.
  const made = await build({ featureDim: 3, heads: [2, 50], numLabels: 51, weights: biasOnly(3, [[0, 20], Array.from({ length: 50 }, (_, j) => -j / 10)]) })
  const e = await engineFor(made)
  const x = randomFeatures(3, 3, 2)
  const out = await e.predict(x, 3, [1, 2, 7])
  out.forEach((got, i) => agrees(t, got, x.subarray(i * 3, i * 3 + 3), made, [1, 2, 7][i]!, `crowded #${i}`))
  t.equal(out[1]![0]!.id, 50)
  t.equal(out[1]![1]!.id, 0, 'after 50, the best valid id comes from head 1 = 0')

  const ohe = await build({ featureDim: 3, heads: [32], numLabels: 30, weights: biasOnly(3, [Array.from({ length: 32 }, (_, j) => (j >= 30 ? 9 : j / 100))]) })
  const e2 = await engineFor(ohe)
  const got = await e2.predict(x.subarray(0, 3), 1, [3])
  t.strictSame(got[0]!.map((c) => c.id), [29, 28, 27], 'ids 30 and 31 are never returned')
})

t.test('one model call per batch, also when some instances need widening', async (t) => {
  const made = await build({ featureDim: 3, heads: [4, 4], numLabels: 10, weights: biasOnly(3, [[0, 1, 2, 10], [0, 1, 5, 0]]) })
  const bundle = await loadBundle(made.dir)
  const model = bundle.model as tf.LayersModel
  let calls = 0
  const execute = model.execute.bind(model)
  model.execute = (x, outputs) => {
    calls++
    return execute(x, outputs)
  }
  const e = await Engine.create(bundle, backend)
  t.teardown(() => e.dispose())
  const out = await e.predict(randomFeatures(16, 3, 3), 16, new Array<number>(16).fill(2))
  t.equal(calls, 1)
  t.ok(out.every((c) => c.length === 2 && c.every((x) => x.id < 10)))
})

t.test('input checks', async (t) => {
  const made = await build({ ...shape, seed: 51 })
  const e = await engineFor(made)
  t.strictSame(await e.predict(new Float32Array(0), 0, []), [])
  await t.rejects(e.predict(new Float32Array(15), 2, [1, 1]), /features has 15 values, expected n \* featureDim = 2 \* 8 = 16/)
  await t.rejects(e.predict(new Float32Array(16), 2, [1]), /topK has 1 entries, expected one per instance \(2\)/)
  await t.rejects(e.predict(new Float32Array(16), 2, [1, 0]), /topK\[1\] must be a positive integer, got 0/)
  await t.rejects(e.predict(new Float32Array(16), 2, [1, 1.5]), /topK\[1\] must be a positive integer, got 1.5/)
  await t.rejects(e.predict(new Float32Array(16), 1.5, [1]), /n must be a non-negative integer/)
  await t.rejects(e.predict(Array.from({ length: 8 }, () => 0) as unknown as Float32Array, 1, [1]), /Float32Array/)
})

t.test('no tensors leak over many predictions, warm-up and the widening path', async (t) => {
  const plain = await build({ ...shape, outputs: 'concat', seed: 61 })
  const crowded = await build({ featureDim: 3, heads: [2, 50], numLabels: 51, weights: biasOnly(3, [[0, 20], Array.from({ length: 50 }, (_, j) => -j / 10)]) })
  const e1 = await engineFor(plain)
  const e2 = await engineFor(crowded)
  t.equal(e1.backend.name, 'wasm')
  t.equal(e1.numTensors(), tf.memory().numTensors)
  await e1.warmUp()
  await e2.warmUp(4)
  const before = e1.numTensors()
  const x8 = randomFeatures(5, 8, 7)
  const x3 = randomFeatures(5, 3, 8)
  for (let i = 0; i < 200; i++) {
    await e1.predict(x8, 5, [1, 2, 3, 10, 1 + (i % 7)])
    await e2.predict(x3, 5, [1, 2, 3, 4, 1 + (i % 5)])
  }
  // A failing call must not leak either.
  await t.rejects(e1.predict(x8, 4, [1, 1, 1, 1]))
  t.equal(e1.numTensors(), before, `tensor count stays ${before}`)
})

t.test('a cap on one tensor (the webgpu storage binding): weights over it are refused, larger batches split', async (t) => {
  // concat: one Dense 'heads' with kernel [8, 12] float32 = 384 bytes; split: kernels [8, 4], [8, 5], [8, 3].
  const concat = await build({ ...shape, outputs: 'concat', seed: 81 })
  const tooBig = await loadBundle(concat.dir)
  t.teardown(() => tooBig.model.dispose())
  const err = await Engine.create(tooBig, 'webgpu', { maxBindingBytes: 383 }).then(() => undefined, (e: unknown) => e as BundleError)
  t.ok(err instanceof BundleError, 'a bundle error: start-up stops with one line naming the file')
  t.equal(err?.file, join(concat.dir, 'model.json'))
  t.match(err?.detail, /^on webgpu, one tensor may hold at most 383 bytes \(a WebGPU storage binding\), and heads\/kernel\S* \[8, 12\] float32 = 384 bytes is larger/)

  for (const outputs of ['split', 'concat'] as const) {
    const made = await build({ ...shape, outputs, seed: 82 })
    const plain = await engineFor(made)
    const bundle = await loadBundle(made.dir)
    const model = bundle.model as tf.LayersModel
    const rows: number[] = []
    const execute = model.execute.bind(model)
    model.execute = (x, out) => {
      rows.push((x as tf.Tensor).shape[0]!)
      return execute(x, out)
    }
    // Widest row: 12 floats (heads, and the concat kernel's units) = 48 bytes, so 8 rows fit 400 bytes; 20 rows
    // then go in 3 calls of about equal size.
    // denseChain: false, so that every call goes through the model.execute counted here.
    const capped = await Engine.create(bundle, backend, { maxBindingBytes: 400, denseChain: false })
    t.teardown(() => capped.dispose())
    const n = 20
    const x = randomFeatures(n, 8, 83)
    const topK = Array.from({ length: n }, (_, i) => 1 + (i % 4))
    const got = await capped.predict(x, n, topK)
    t.strictSame(rows, [7, 7, 6], `${outputs}: 20 rows in calls of at most 8`)
    t.strictSame(got, await plain.predict(x, n, topK), `${outputs}: the same answers as in one call`)
  }
})

t.test('a disposed engine refuses work', async (t) => {
  const made = await build({ ...shape, seed: 71 })
  const e = await Engine.create(await loadBundle(made.dir), backend)
  const before = tf.memory().numTensors
  e.dispose()
  t.ok(tf.memory().numTensors < before, 'model weights freed')
  await t.rejects(e.predict(new Float32Array(8), 1, [1]), /disposed/)
})

t.test('a load gives this thread\'s event loop a turn after each step that runs the model', async (t) => {
  // On the engine thread, the versions already serving answer their batches between those steps.
  const made = await build({ featureDim: 8, heads: [4, 5], numLabels: 20, seed: 21, outputs: 'concat' })
  const bundle = await loadBundle(made.dir)
  let turns = 0
  let loading = true
  const count = (): void => {
    turns++
    if (loading) setImmediate(count)
  }
  setImmediate(count)
  const e = await Engine.create(bundle, backend)
  loading = false
  t.teardown(() => e.dispose())
  t.ok(turns >= 2, `${turns} turns while the dense chain and its direct kernel were made and checked`)
})
