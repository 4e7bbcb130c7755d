// The engine on its worker thread: same answers as the in-process engine, buffers handed over and back, start-up
// errors as clear as in-process, and a dead thread turns into failed predictions and failed health probes.
import t from 'tap'
import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import type { Worker } from 'node:worker_threads'
import fc from 'fast-check'
import { selectBackend } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine } from '../../src/engine/engine.js'
import { SplitEngine } from '../../src/engine/split-engine.js'
import { ENGINE_YOUNG_GENERATION_MB, EngineThread } from '../../src/engine/thread-host.js'
import { decodeResults, encodeResults } from '../../src/engine/thread-wire.js'
import { decompose } from '../../src/mhe/codec.js'
import { BundleError } from '../../src/errors.js'
import { FloatPool } from '../../src/engine/float-pool.js'
import { startEngine } from '../../src/engine/model-engine.js'
import { readBundleFiles } from '../../src/bundle/files.js'
import { makeHeadsBundle, randomFeatures } from '../helpers/bundles.js'
import { testApp } from '../helpers/server.js'

const quiet = { info() {}, warn() {}, error() {} }
const root = t.testdir({})
const heads = [7, 5, 3]
const made = await (async () => {
  await selectBackend('wasm', quiet)
  return makeHeadsBundle(join(root, 'b'), { featureDim: 6, heads, numLabels: 100, seed: 11 })
})()

const startThread = async (dir = made.dir, recycle?: FloatPool) => {
  const thread = await EngineThread.start({ modelDir: dir, backend: 'wasm', manifest: made.manifest, log: quiet, recycle })
  t.teardown(() => thread.dispose())
  return thread
}

t.test('wire format: encode then decode gives the candidates back, head ids from the label ids', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.record({ id: fc.integer({ min: 0, max: 7 * 5 * 3 - 1 }), logScore: fc.double({ noNaN: true, max: 0 }) }), { maxLength: 4 }), { maxLength: 5 }),
      (lists) => {
        const results = lists.map((l) => l.map((c) => ({ ...c, headIds: decompose(c.id, heads) })))
        t.same(decodeResults(encodeResults(results), heads), results)
      },
    ),
    { numRuns: 300 },
  )
})

t.test('FloatPool keeps only whole buffers of its length, up to its limit', async (t) => {
  const pool = new FloatPool(4, 2)
  const a = pool.take()
  t.equal(a.length, 4)
  pool.give(a)
  t.equal(pool.take(), a, 'a given-back array is reused')
  pool.give(new Float32Array(8).subarray(0, 4))
  pool.give(new Float32Array(5))
  t.not(pool.take(), a, 'views and other lengths are not kept')
  for (let i = 0; i < 3; i++) pool.give(new Float32Array(4))
  const kept = new Set([pool.take(), pool.take(), pool.take()])
  t.equal(kept.size, 3, 'past the limit, take() makes new arrays')
})

t.test('same answers as the in-process engine, to the last bit', async (t) => {
  const inline = await Engine.create(await loadBundle(made.dir), 'wasm')
  t.teardown(() => inline.dispose())
  const recycle = new FloatPool(20 * 6, 2)
  const thread = await startThread(made.dir, recycle)
  t.equal(thread.backend.name, 'wasm')
  t.ok(thread.numTensors() > 0, 'the thread reports its tensors from the start')
  const tensors = thread.numTensors()
  for (const n of [1, 3, 20]) {
    const x = randomFeatures(n, 6, n)
    const topK = Array.from({ length: n }, (_, i) => 1 + (i % 9))
    const want = await inline.predict(x, n, topK)
    const buffer = recycle.take()
    buffer.set(x)
    const got = await thread.predict(buffer.subarray(0, n * 6), n, topK)
    t.same(got, want, `batch of ${n}`)
    t.equal(buffer.byteLength, 0, 'the batch buffer moved to the engine thread')
    t.equal(recycle.take().length, 20 * 6, 'and came back to the pool')
  }
  t.equal(thread.numTensors(), tensors, 'no tensor leaked on the engine thread')
  await t.rejects(thread.predict(new Float32Array(5), 1, [1]), /features has 5 values, expected n \* featureDim = 1 \* 6/, 'engine errors reach the caller')
  t.same(await thread.predict(randomFeatures(1, 6, 3), 1, [2]), await inline.predict(randomFeatures(1, 6, 3), 1, [2]), 'and it goes on')
})

t.test('the engine thread runs with a small young generation (no full GCs that free nothing, thread-host.ts)', async (t) => {
  const thread = await startThread()
  const limits = (thread as unknown as { worker: Worker }).worker.resourceLimits
  t.equal(limits?.maxYoungGenerationSizeMb, ENGINE_YOUNG_GENERATION_MB)
  t.ok(ENGINE_YOUNG_GENERATION_MB <= 8, 'far below V8\'s default, which let it grow past 13 MB')
})

t.test('one buffer rule for both engines: predict takes the batch buffer over and hands it back to recycle', async (t) => {
  const files = await readBundleFiles(made.dir)
  const x = randomFeatures(4, 6, 9)
  const answers = []
  for (const thread of [true, false]) {
    const recycle = new FloatPool(4 * 6, 2)
    const engine = await startEngine({ files, backend: 'wasm', thread, log: quiet, recycle })
    t.teardown(() => engine.dispose())
    t.equal(engine.backend.name, 'wasm')
    const buffer = recycle.take()
    buffer.set(x)
    answers.push(await engine.predict(buffer.subarray(0, 4 * 6), 4, [1, 2, 3, 4]))
    // A new array from the pool would be zeros: these are the features handed over, back in the pool.
    const what = thread ? 'engine thread' : 'in-thread engine'
    t.same(Array.from(recycle.take()), Array.from(x), `${what}: the buffer came back to the pool`)
    const refused = recycle.take()
    refused.set(x)
    await engine.dispose()
    await t.rejects(engine.predict(refused, 4, [1, 1, 1, 1]), /engine is disposed/)
    t.same(Array.from(recycle.take()), Array.from(x), `${what}: also when it refuses the batch`)
  }
  t.same(answers[0], answers[1], 'and the same answers')
})

t.test('dispose settles a prediction still in flight', async (t) => {
  const thread = await startThread()
  // Handled before dispose rejects it: the wasm module rethrows unhandled rejections in this process.
  const pending = t.rejects(thread.predict(randomFeatures(64, 6, 5), 64, new Array<number>(64).fill(3)), /engine is disposed/)
  await thread.dispose()
  await pending
  await t.rejects(thread.predict(randomFeatures(1, 6, 5), 1, [1]), /engine is disposed/)
})

t.test('a bundle the thread cannot load fails start-up with the same BundleError as in-process', async (t) => {
  const broken = await makeHeadsBundle(join(root, 'broken'), { featureDim: 6, heads, numLabels: 100, seed: 1 })
  await rm(join(broken.dir, 'weights.bin'))
  const inProcess = await loadBundle(broken.dir).catch((e: unknown) => e)
  const err = await startThread(broken.dir).catch((e: unknown) => e)
  t.ok(err instanceof BundleError, 'a BundleError')
  t.equal((err as BundleError).message, (inProcess as BundleError).message)
  t.equal((err as BundleError).file, join(broken.dir, 'weights.bin'))
})

t.test('a dead engine thread: 503 + Retry-After on /predict, failed on both probes', async (t) => {
  const app = await testApp(t, made)
  const row = Array.from({ length: 6 }, () => 0.5)
  t.equal((await app.inject({ method: 'POST', url: '/predict', payload: { instances: [row] } })).statusCode, 200)
  const split = app.mhe.engine as SplitEngine
  t.ok(split instanceof SplitEngine && split.thread instanceof EngineThread, 'the default engine runs on a thread (small batches beside it)')
  await (split.thread as unknown as { worker: Worker }).worker.terminate()
  const res = await app.inject({ method: 'POST', url: '/predict', payload: { instances: [row] } })
  t.equal(res.statusCode, 503, 'retryable elsewhere, not a 500')
  t.equal(res.json().code, 'MHE_NOT_READY')
  t.match(res.json().message, /engine of this process stopped/)
  t.equal(res.headers['retry-after'], '1')
  t.equal(app.mhe.state, 'failed')
  t.equal((await app.inject('/health/live')).statusCode, 503, 'liveness fails: the orchestrator replaces the process')
  t.equal((await app.inject('/health/ready')).statusCode, 503)
})

t.test('batches of up to MHE_INLINE_BATCH instances run on the event loop, with the same answers as on the thread', async (t) => {
  const split = await testApp(t, made, { MHE_INLINE_BATCH: '2' })
  const threadOnly = await testApp(t, made, { MHE_INLINE_BATCH: '0' })
  t.ok(split.mhe.engine instanceof SplitEngine)
  t.ok(threadOnly.mhe.engine instanceof EngineThread, 'MHE_INLINE_BATCH=0: no copy of the model on the event loop')
  // Which engine ran each batch: the thread engine's own predict, counted (it still computes every batch it gets).
  const { thread } = split.mhe.engine as SplitEngine
  const onThread: number[] = []
  const predict = thread.predict.bind(thread)
  thread.predict = (features, n, topK) => (onThread.push(n), predict(features, n, topK))
  for (const n of [1, 2, 3]) {
    const x = randomFeatures(n, 6, 7 + n)
    const payload = { instances: Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * 6, (i + 1) * 6))), top_k: 3 }
    const a = await split.inject({ method: 'POST', url: '/predict', payload })
    const b = await threadOnly.inject({ method: 'POST', url: '/predict', payload })
    t.equal(a.statusCode, 200)
    t.same(a.json(), b.json(), `${n} instance(s): the same answer`)
  }
  t.same(onThread, [3], 'batches of 1 and 2 ran on the event loop, the batch of 3 on the thread')
})

t.test('MHE_ENGINE_THREAD=false runs the engine on the event loop with the same answers', async (t) => {
  const onThread = await testApp(t, made)
  const inline = await testApp(t, made, { MHE_ENGINE_THREAD: 'false' })
  t.notOk(inline.mhe.engine instanceof EngineThread)
  const x = randomFeatures(5, 6, 42)
  const payload = { instances: Array.from({ length: 5 }, (_, i) => Array.from(x.subarray(i * 6, (i + 1) * 6))), top_k: 4 }
  const a = await onThread.inject({ method: 'POST', url: '/predict', payload })
  const b = await inline.inject({ method: 'POST', url: '/predict', payload })
  t.equal(a.statusCode, 200)
  t.same(a.json(), b.json())
})
