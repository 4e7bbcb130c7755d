// The engine's two paths give the same answers: narrow heads read whole rows and finish in JS (default below
// JS_HEADS_MAX_WIDTH outputs), wide ones stay on the backend (forced here with jsHeadsMaxWidth: 0).
import t from 'tap'
import { join } from 'node:path'
import { selectBackend } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine, JS_HEADS_MAX_WIDTH } from '../../src/engine/engine.js'
import { makeHeadsBundle, randomFeatures, referenceTopK, type HeadsBundleOptions } from '../helpers/bundles.js'

const root = t.testdir({})
t.before(async () => {
  await selectBackend('wasm', { info() {}, warn() {} })
})

const cases: [string, HeadsBundleOptions][] = [
  ['split logits, ids past C', { featureDim: 8, heads: [5, 7, 3], numLabels: 90, seed: 3 }],
  ['concat logits', { featureDim: 6, heads: [4, 6], numLabels: 24, seed: 4, outputs: 'concat' }],
  ['probabilities, ids past C', { featureDim: 5, heads: [6, 6], numLabels: 30, seed: 5, activation: 'probabilities' }],
  ['one head (OHE)', { featureDim: 7, heads: [40], numLabels: 40, seed: 6 }],
]

t.test('JS path and backend path agree with each other and with the brute force', async (t) => {
  t.ok(JS_HEADS_MAX_WIDTH >= 300, 'MHE heads like 100x100x100 take the JS path')
  let i = 0
  for (const [what, opts] of cases) {
    const made = await makeHeadsBundle(join(root, `b${i++}`), opts)
    const js = await Engine.create(await loadBundle(made.dir), 'wasm')
    const kernel = await Engine.create(await loadBundle(made.dir), 'wasm', { jsHeadsMaxWidth: 0 })
    const d = opts.featureDim
    const n = 12
    const x = randomFeatures(n, d, 17)
    const ks = Array.from({ length: n }, (_, j) => [1, 3, 10, 25][j % 4]!)
    const [a, b] = [await js.predict(x, n, ks), await kernel.predict(x, n, ks)]
    for (let j = 0; j < n; j++) {
      const ref = referenceTopK(x.subarray(j * d, (j + 1) * d), made.weights, opts.heads, opts.numLabels, ks[j]!)
      t.equal(a[j]!.length, ref.length, `${what} #${j}: JS path gives ${ref.length}`)
      t.equal(b[j]!.length, ref.length, `${what} #${j}: backend path gives ${ref.length}`)
      ref.forEach((r, rank) => {
        // Float32 on both paths, float64 in the reference: compare scores, which near-ties cannot swap.
        t.ok(Math.abs(a[j]![rank]!.logScore - r.logScore) < 1e-4, `${what} #${j} rank ${rank}: JS score`)
        t.ok(Math.abs(b[j]![rank]!.logScore - r.logScore) < 1e-4, `${what} #${j} rank ${rank}: backend score`)
        t.ok(a[j]![rank]!.id < opts.numLabels && b[j]![rank]!.id < opts.numLabels, `${what} #${j} rank ${rank}: valid ids`)
      })
      t.strictSame(
        a[j]!.map((c) => c.id),
        b[j]!.map((c) => c.id),
        `${what} #${j}: same ids in the same order`,
      )
    }
    js.dispose()
    kernel.dispose()
  }
})

t.test('top-1 batches (every k = 1) take the JS path a short way, with the numbers of the general merge', async (t) => {
  let i = 0
  // Most composed ids past C: many rows whose heads' argmaxes are not a label (the general merge's case).
  const pastCOften: [string, HeadsBundleOptions] = ['logits, most ids past C', { featureDim: 6, heads: [4, 4], numLabels: 7, seed: 8 }]
  for (const [what, opts] of [...cases, pastCOften]) {
    const made = await makeHeadsBundle(join(root, `top1-${i++}`), opts)
    const js = await Engine.create(await loadBundle(made.dir), 'wasm')
    const kernel = await Engine.create(await loadBundle(made.dir), 'wasm', { jsHeadsMaxWidth: 0 })
    const d = opts.featureDim
    const n = 40
    const x = randomFeatures(n, d, 23)
    const ones = new Array<number>(n).fill(1)
    // k = 2 goes through the general merge; its best candidate is the top-1 answer.
    const [top1, top2, backend] = [await js.predict(x.slice(), n, ones), await js.predict(x.slice(), n, new Array<number>(n).fill(2)), await kernel.predict(x.slice(), n, ones)]
    let pastC = 0
    for (let j = 0; j < n; j++) {
      const ref = referenceTopK(x.subarray(j * d, (j + 1) * d), made.weights, opts.heads, opts.numLabels, 1)[0]!
      // The heads' argmaxes compose the best of every id, valid or not.
      const product = opts.heads.reduce((a, b) => a * b, 1)
      if (referenceTopK(x.subarray(j * d, (j + 1) * d), made.weights, opts.heads, product, 1)[0]!.id >= opts.numLabels) pastC++
      t.same(top1[j], [top2[j]![0]], `${what} #${j}: the general merge's best, to the bit`)
      t.equal(top1[j]![0]!.id, ref.id, `${what} #${j}: the brute force's best`)
      t.equal(backend[j]![0]!.id, ref.id, `${what} #${j}: the backend path's best`)
      t.ok(Math.abs(top1[j]![0]!.logScore - ref.logScore) < 1e-4, `${what} #${j}: its score`)
    }
    if (opts === pastCOften[1]) t.ok(pastC > 0, `${what}: ${pastC} rows whose heads' argmaxes compose an id past C`)
    js.dispose()
    kernel.dispose()
  }
})
