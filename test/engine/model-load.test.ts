// loadBundle: good bundles of each layout load; each broken bundle fails with a message naming file and mismatch.
import t, { type Test } from 'tap'
import { appendFile, cp, mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { BundleError } from '../../src/errors.js'
import { LabelStore } from '../../src/bundle/labels.js'
import { makeGraphBundle, makeHeadsBundle } from '../helpers/bundles.js'

const quiet = { info() {}, warn() {} }
const root = t.testdir({})
const opts = { featureDim: 8, heads: [4, 5, 3], numLabels: 50 }
const SPLIT = join(root, 'split')
const CONCAT = join(root, 'concat')
const GRAPH = join(root, 'graph')

t.before(async () => {
  await selectBackend('wasm', quiet)
  await makeHeadsBundle(SPLIT, { ...opts, outputs: 'split' })
  await makeHeadsBundle(CONCAT, { ...opts, outputs: 'concat' })
  await makeGraphBundle(GRAPH, opts)
})

let n = 0
/** A fresh copy of a good bundle, changed by `edit`. */
async function broken(from: string, edit: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(root, `broken-${++n}`)
  await cp(from, dir, { recursive: true })
  await edit(dir)
  return dir
}
async function editJson(file: string, fn: (o: Record<string, unknown>) => void): Promise<void> {
  const o = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
  fn(o)
  await writeFile(file, JSON.stringify(o))
}
const setManifest = (patch: Record<string, unknown>) => (dir: string) => editJson(join(dir, 'mhe.json'), (o) => Object.assign(o, patch))
const weightsManifest = (o: Record<string, unknown>) => (o.weightsManifest as { paths: string[] }[])[0]!

/** Loads `dir`, expects a BundleError whose message starts with `file` and matches `pattern`. */
async function fails(t: Test, dir: string, file: string, pattern: RegExp): Promise<void> {
  const before = tf.memory().numTensors
  const labelsBefore = LabelStore.heldStores()
  const err = await loadBundle(dir).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof BundleError, 'rejects with BundleError')
  const msg = (err as Error).message
  t.ok(msg.startsWith(`${file}: `), `names ${file}: ${msg}`)
  t.match(msg, pattern)
  t.equal((err as BundleError).file, file)
  t.equal(tf.memory().numTensors, before, 'a failed load leaves no tensors behind')
  t.equal(LabelStore.heldStores(), labelsBefore, 'nor labels')
}

t.test('good bundles load in each layout', async (t) => {
  for (const [dir, layout] of [
    [SPLIT, 'split'],
    [CONCAT, 'concat'],
    [GRAPH, 'concat'],
  ] as const) {
    const b = await loadBundle(dir)
    t.equal(b.dir, dir)
    t.equal(b.layout, layout, dir)
    t.strictSame(b.manifest.heads, opts.heads)
    t.equal(b.labels.size, 50)
    t.equal(b.labels.name(49), 'label-49')
    t.equal(dir === GRAPH, b.model instanceof tf.GraphModel)
    b.model.dispose()
  }
})

t.test('a relative path is resolved', async (t) => {
  const b = await loadBundle(join(SPLIT, '..', 'split'))
  t.equal(b.dir, SPLIT)
  b.model.dispose()
})

t.test('missing folder or manifest', async (t) => {
  const nowhere = join(root, 'nowhere')
  await fails(t, nowhere, nowhere, /bundle folder not found/)
  const empty = join(root, 'empty')
  await mkdir(empty)
  await fails(t, empty, join(empty, 'mhe.json'), /missing manifest/)
  const file = join(root, 'afile')
  await writeFile(file, 'x')
  await fails(t, file, file, /is not a folder/)
})

t.test('bad JSON', async (t) => {
  let dir = await broken(SPLIT, (d) => writeFile(join(d, 'mhe.json'), '{"format": 1,'))
  await fails(t, dir, join(dir, 'mhe.json'), /is not valid JSON/)
  dir = await broken(SPLIT, (d) => writeFile(join(d, 'model.json'), 'not json'))
  await fails(t, dir, join(dir, 'model.json'), /is not valid JSON/)
  dir = await broken(SPLIT, (d) => writeFile(join(d, 'model.json'), '{"format": "layers-model"}'))
  await fails(t, dir, join(dir, 'model.json'), /no "modelTopology"/)
})

t.test('manifest field errors', async (t) => {
  let dir = await broken(SPLIT, setManifest({ featureDim: 'eight' }))
  await fails(t, dir, join(dir, 'mhe.json'), /"featureDim" must be a positive integer, got "eight"/)
  dir = await broken(SPLIT, setManifest({ format: 2 }))
  await fails(t, dir, join(dir, 'mhe.json'), /"format" must be 1, got 2/)
  dir = await broken(SPLIT, setManifest({ outputs: 'scores' }))
  await fails(t, dir, join(dir, 'mhe.json'), /"outputs" must be "logits" or "probabilities"/)
})

t.test('heads not covering numLabels', async (t) => {
  const dir = await broken(SPLIT, setManifest({ numLabels: 61 }))
  await fails(t, dir, join(dir, 'mhe.json'), /"heads" \[4,5,3\] cover 60 ids, fewer than "numLabels" 61/)
})

t.test('wrong featureDim', async (t) => {
  const dir = await broken(SPLIT, setManifest({ featureDim: 9 }))
  await fails(t, dir, join(dir, 'model.json'), /model input shape \[batch, 8\] does not match mhe.json "featureDim" 9/)
  const g = await broken(GRAPH, setManifest({ featureDim: 9 }))
  await fails(t, g, join(g, 'model.json'), /model input shape \[batch, 8\] does not match mhe.json "featureDim" 9/)
})

t.test('label count differs from numLabels', async (t) => {
  let dir = await broken(SPLIT, async (d) => {
    const lines = (await readFile(join(d, 'labels.txt'), 'utf8')).split('\n')
    await writeFile(join(d, 'labels.txt'), lines.slice(1).join('\n'))
  })
  await fails(t, dir, join(dir, 'labels.txt'), /has 49 labels \(lines\), mhe.json "numLabels" is 50/)
  dir = await broken(SPLIT, (d) => appendFile(join(d, 'labels.txt'), 'extra\n'))
  await fails(t, dir, join(dir, 'labels.txt'), /has 51 labels \(lines\), mhe.json "numLabels" is 50/)
  dir = await broken(SPLIT, (d) => rm(join(d, 'labels.txt')))
  await fails(t, dir, join(dir, 'labels.txt'), /missing label file \(named by mhe.json "labels"\)/)
})

t.test('missing model.json', async (t) => {
  const dir = await broken(SPLIT, (d) => rm(join(d, 'model.json')))
  await fails(t, dir, join(dir, 'model.json'), /missing model file \(named by mhe.json "model"\)/)
})

t.test('missing, short or long weight file', async (t) => {
  let dir = await broken(SPLIT, (d) => rm(join(d, 'weights.bin')))
  await fails(t, dir, join(dir, 'weights.bin'), /missing weight file \(listed in .*model\.json weightsManifest\[0\]\.paths\)/)
  // Split bundle weights: 3 kernels [8, n] + 3 biases = (8 + 1) * 12 floats = 432 bytes.
  dir = await broken(SPLIT, (d) => truncate(join(d, 'weights.bin'), 100))
  await fails(t, dir, join(dir, 'weights.bin'), /holds 100 bytes, .*model\.json declares 432 bytes for .*head_0\/kernel \[8, 4\] float32/)
  dir = await broken(SPLIT, (d) => appendFile(join(d, 'weights.bin'), Buffer.alloc(8)))
  await fails(t, dir, join(dir, 'weights.bin'), /holds 440 bytes, .*declares 432 bytes/)
})

t.test('the weights are the saved ones; a weight the file lacks or cannot decode is refused, with no tensor left', async (t) => {
  // The model is built with zero initializers and the saved values loaded over them (model-load.ts): the values must
  // come from the file, and a weight the file lacks must not stay zero.
  const b = await loadBundle(SPLIT)
  const saved = new Float32Array((await readFile(join(SPLIT, 'weights.bin'))).buffer.slice(0))
  const loaded = Float32Array.from((b.model as tf.LayersModel).getWeights().flatMap((w) => Array.from(w.dataSync())))
  t.strictSame(loaded, saved)
  t.ok(saved.some((x) => x !== 0))
  b.model.dispose()
  // The last bias (head_2, 3 floats) neither listed nor in the file.
  const dir = await broken(SPLIT, async (d) => {
    await editJson(join(d, 'model.json'), (o) => void (o.weightsManifest as { weights: unknown[] }[])[0]!.weights.pop())
    await truncate(join(d, 'weights.bin'), 432 - 12)
  })
  await fails(t, dir, join(dir, 'model.json'), /cannot build the layers model: .*weight/i)
  // A weight that cannot be decoded (uint8 quantization without its min and scale): the decode fails part way.
  const undecodable = await broken(SPLIT, async (d) => {
    await editJson(join(d, 'model.json'), (o) => {
      const specs = (o.weightsManifest as { weights: { quantization?: object }[] }[])[0]!.weights
      specs[specs.length - 1]!.quantization = { dtype: 'uint8' }
    })
    await truncate(join(d, 'weights.bin'), 432 - 12 + 3)
  })
  await fails(t, undecodable, join(undecodable, 'model.json'), /cannot build the layers model: .*(min|scale)/)
})

t.test('output shape does not match heads', async (t) => {
  // Same product (60 >= 50), different order: split outputs are [4, 5, 3].
  let dir = await broken(SPLIT, setManifest({ heads: [5, 4, 3] }))
  await fails(
    t,
    dir,
    join(dir, 'model.json'),
    /the model has 3 output\(s\) of shape \[batch, 4\], \[batch, 5\], \[batch, 3\]; mhe.json "heads" \[5,4,3\] expects 3 outputs \[batch, n_h\] with n_h = \[5,4,3\] in order, or 1 output \[batch, 12\]/,
  )
  dir = await broken(SPLIT, setManifest({ heads: [60], numLabels: 50 }))
  await fails(t, dir, join(dir, 'model.json'), /the model has 3 output\(s\).*expects 1 output \[batch, 60\]/)
  // Concat output is [batch, 12]; heads [6, 5, 2] sum to 13.
  dir = await broken(CONCAT, setManifest({ heads: [6, 5, 2] }))
  await fails(t, dir, join(dir, 'model.json'), /1 output\(s\) of shape \[batch, 12\].*or 1 output \[batch, 13\]/)
  const g = await broken(GRAPH, setManifest({ heads: [6, 5, 2] }))
  await fails(t, g, join(g, 'model.json'), /1 output\(s\) of shape \[batch, 12\].*or 1 output \[batch, 13\]/)
})

t.test('paths may not leave the bundle folder', async (t) => {
  let dir = await broken(SPLIT, async (d) => {
    await editJson(join(d, 'model.json'), (o) => {
      weightsManifest(o).paths = ['../x.bin']
    })
    await writeFile(join(d, '..', 'x.bin'), Buffer.alloc(432))
  })
  await fails(t, dir, join(dir, 'model.json'), /weight path "\.\.\/x\.bin" points outside the bundle folder/)
  dir = await broken(SPLIT, setManifest({ model: '../split/model.json' }))
  await fails(t, dir, join(dir, 'mhe.json'), /"model" "\.\.\/split\/model\.json" points outside the bundle folder/)
  dir = await broken(SPLIT, setManifest({ labels: '/etc/passwd' }))
  await fails(t, dir, join(dir, 'mhe.json'), /"labels" "\/etc\/passwd" must be relative to the bundle folder/)
})

t.test('files in subfolders of the bundle are fine', async (t) => {
  const dir = await broken(SPLIT, async (d) => {
    await mkdir(join(d, 'tfjs'))
    await cp(join(d, 'model.json'), join(d, 'tfjs', 'model.json'))
    await cp(join(d, 'weights.bin'), join(d, 'tfjs', 'weights.bin'))
    await rm(join(d, 'model.json'))
    await rm(join(d, 'weights.bin'))
    await setManifest({ model: 'tfjs/model.json' })(d)
  })
  const b = await loadBundle(dir)
  t.equal(b.layout, 'split')
  b.model.dispose()
})
