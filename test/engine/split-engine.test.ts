// The copy of the model for small batches (split-engine.ts): made before serving on a first load, made only once
// traffic is light for a version loaded beside others, never used when it answers differently from the engine thread.
import t from 'tap'
import { join } from 'node:path'
import { copyFile } from 'node:fs/promises'
import * as tf from '@tensorflow/tfjs-core'
import { selectBackend } from '../../src/engine/backend.js'
import { SplitEngine, LIGHT_TRAFFIC_BATCHES } from '../../src/engine/split-engine.js'
import { startEngine } from '../../src/engine/model-engine.js'
import { readBundleFiles } from '../../src/bundle/files.js'
import type { Candidate } from '../../src/mhe/codec.js'
import type { Log } from '../../src/log.js'
import { makeHeadsBundle, randomFeatures, randomWeights } from '../helpers/bundles.js'

const root = t.testdir({})
const d = 6
const heads = [7, 5, 3]
const quiet: Log = { info() {}, warn() {}, error() {} }
await selectBackend('wasm', quiet)
const made = await makeHeadsBundle(join(root, 'b'), { featureDim: d, heads, numLabels: 100, seed: 11, outputs: 'concat' })
const other = await makeHeadsBundle(join(root, 'other'), { featureDim: d, heads, numLabels: 100, seed: 12, outputs: 'concat' })

const start = async (dir: string, inlineCopy: 'now' | 'when-light', log: Log = quiet) => {
  const engine = await startEngine({ files: await readBundleFiles(dir), backend: 'wasm', thread: true, inlineBatch: 2, inlineCopy, log })
  t.ok(engine instanceof SplitEngine, 'small batches may run on the event loop')
  const split = engine as SplitEngine
  // Which batches the thread ran: its own predict, counted (it still computes every batch it gets).
  const onThread: number[] = []
  const predict = split.thread.predict.bind(split.thread)
  split.thread.predict = (features, n, topK) => (onThread.push(n), predict(features, n, topK))
  return { split, onThread }
}

const ask = (engine: SplitEngine, n: number, seed: number): Promise<Candidate[][]> =>
  engine.predict(randomFeatures(n, d, seed), n, new Array<number>(n).fill(3))

t.test('a first load makes the copy before it serves', async (t) => {
  const { split, onThread } = await start(made.dir, 'now')
  t.teardown(() => split.dispose())
  t.ok(split.inline)
  await ask(split, 1, 1)
  t.same(onThread, [], 'one instance ran on the event loop')
})

t.test('a version loaded beside others makes its copy after LIGHT_TRAFFIC_BATCHES small batches in a row', async (t) => {
  const { split, onThread } = await start(made.dir, 'when-light')
  const eager = await start(made.dir, 'now')
  t.teardown(async () => {
    await split.dispose()
    await eager.split.dispose()
  })
  t.notOk(split.inline, 'no copy yet')
  // A large batch breaks the run: light traffic is small batches in a row.
  for (let i = 0; i < LIGHT_TRAFFIC_BATCHES - 1; i++) await ask(split, 1, i)
  await ask(split, 3, 99)
  for (let i = 0; i < LIGHT_TRAFFIC_BATCHES - 1; i++) await ask(split, 2, i)
  await split.copied()
  t.notOk(split.inline, 'still no copy')
  t.equal(onThread.length, 2 * LIGHT_TRAFFIC_BATCHES - 1, 'every batch ran on the thread')
  const answers: Candidate[][][] = []
  answers.push(await ask(split, 1, 7))
  await split.copied()
  t.ok(split.inline, 'the copy is made once the run is long enough')
  const before = onThread.length
  answers.push(await ask(split, 1, 7), await ask(split, 2, 8))
  t.equal(onThread.length, before, 'small batches now run on the event loop')
  await ask(split, 3, 9)
  t.equal(onThread.length, before + 1, 'large ones still on the thread')
  t.same(answers[0], answers[1], 'the same answer from the thread and from the copy')
  t.same(answers[2], await ask(eager.split, 2, 8), 'the same answer as a copy made at load')
})

t.test('a copy that answers differently from the engine thread is never used', async (t) => {
  const dir = join(root, 'changed')
  await makeHeadsBundle(dir, { featureDim: d, heads, numLabels: 100, seed: 11, outputs: 'concat' })
  const warnings: { obj: object; msg: string }[] = []
  const log: Log = { ...quiet, warn: (obj, msg) => void warnings.push({ obj, msg }) }
  const { split, onThread } = await start(dir, 'when-light', log)
  t.teardown(() => split.dispose())
  const want = await ask(split, 1, 5)
  // The files change after the load: the copy would be another model.
  await copyFile(join(other.dir, 'weights.bin'), join(dir, 'weights.bin'))
  const tensors = tf.memory().numTensors
  for (let i = 0; i < LIGHT_TRAFFIC_BATCHES; i++) await ask(split, 1, i)
  await split.copied()
  t.notOk(split.inline, 'no copy in use')
  t.equal(tf.memory().numTensors, tensors, 'the refused copy is freed')
  t.match(warnings, [{ msg: /no copy of the model on the event loop/, obj: { reason: /does not answer as the engine thread does/ } }])
  const count = onThread.length
  t.same(await ask(split, 1, 5), want, 'the thread answers as before')
  t.equal(onThread.length, count + 1)
  for (let i = 0; i < LIGHT_TRAFFIC_BATCHES; i++) await ask(split, 1, i)
  t.equal(warnings.length, 1, 'not tried again')
})

t.test('disposed while its copy is being made: the copy is freed too', async (t) => {
  const tensors = tf.memory().numTensors
  const { split } = await start(made.dir, 'when-light')
  for (let i = 0; i < LIGHT_TRAFFIC_BATCHES; i++) await ask(split, 1, i)
  await split.dispose()
  t.notOk(split.inline)
  t.equal(tf.memory().numTensors, tensors, 'no tensor left on this thread')
})

t.test('a model whose outputs overflow on the probe rows still gets its copy (NaN on both sides agrees)', async (t) => {
  const huge = await makeHeadsBundle(join(root, 'huge'), { featureDim: d, heads, numLabels: 100, outputs: 'concat', weights: randomWeights(d, heads, 3, 3e38) })
  const { split } = await start(huge.dir, 'now')
  t.teardown(() => split.dispose())
  t.ok(split.inline, 'made and in use')
  const [answer] = await split.predict(new Float32Array(d).fill(1.9), 1, [3])
  t.ok(answer!.some((c) => Number.isNaN(c.logScore)), 'these weights do overflow')
})
