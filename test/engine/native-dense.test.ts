// NativeDense: the dense chain on native/dense.cc (built by `npm ci`'s postinstall), on the wasm backend's weights,
// gives the wasm kernel's outputs bit for bit, for every batch and layer size its blocking has a case for; it refuses
// activations it does not apply and other backends, and the backend choice turns it on and off (MHE_NATIVE_DENSE), on
// the engine thread too.
import t, { type Test } from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../src/engine/backend.js'
import { DenseChain } from '../../src/engine/dense-chain.js'
import { WasmDense } from '../../src/engine/wasm-dense.js'
import { denseAddon, NativeDense, type DenseAddon } from '../../src/engine/native-dense.js'
import { Engine } from '../../src/engine/engine.js'
import { EngineThread } from '../../src/engine/thread-host.js'
import { randomize, sequential } from '../helpers/dense-models.js'
import { makeHeadsBundle } from '../helpers/bundles.js'
import { hasCompiler } from '../helpers/native.js'
import { readBundleFiles } from '../../src/bundle/files.js'
import { loadModel } from '../../src/engine/model-load.js'

const quiet = { info() {}, warn() {}, error() {}, debug() {} }

/** The addon `npm ci` built; without a C++ compiler or Node's headers there is none and these tests skip. */
function addon(t: Test): DenseAddon {
  const found = denseAddon()
  if (!('addon' in found)) t.fail(`no addon: ${found.reason}`)
  return (found as { addon: DenseAddon }).addon
}

t.before(async () => {
  await selectBackend('wasm', quiet, false)
})

const rows = (n: number, d: number, seed: number): Float32Array => tf.tidy(() => tf.randomNormal([n, d], 0, 1, 'float32', seed).dataSync() as Float32Array)

t.test('the wasm kernel\'s outputs, bit for bit, on every path this CPU runs', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const native = addon(t)
  t.match(native.vectors, /^(avx512f|avx2|128-bit)$/, `runs on ${native.vectors}`)
  const paths = native.vectorsSupported()
  t.equal(paths[0], native.vectors, 'the widest path first, and in use')
  t.ok(paths.includes('128-bit'), 'the 128-bit path everywhere')
  t.notOk(native.useVectors('avx1024'), 'no such path')
  t.teardown(() => void native.useVectors(native.vectors))
  for (const path of paths) {
    t.ok(native.useVectors(path), path)
    await sameAsWasm(t, native, path)
  }
})

async function sameAsWasm(t: Test, native: DenseAddon, path: string): Promise<void> {
  const dense = (units: number, d: number, extra: object = {}) => tf.layers.dense({ units, inputShape: [d], ...extra })
  const models: [string, number, tf.LayersModel][] = [
    // 300 outputs: blocks of 64 columns and a tail of single vectors; 9: one partial vector.
    ['MHE heads [100, 100, 100] on 768 features', 768, sequential(dense(300, 768))],
    ['16 outputs (one AVX-512 vector)', 10, sequential(dense(16, 10))],
    // Fewer outputs than one vector holds: 128-bit vectors, or one float at a time below 4.
    ['9 outputs', 12, sequential(dense(9, 12))],
    ['3 outputs', 5, sequential(dense(3, 5))],
    ['17 outputs', 8, sequential(dense(17, 8))],
    ['a hidden relu layer and the heads', 20, sequential(dense(37, 20, { activation: 'relu' }), tf.layers.dense({ units: 65 }))],
    ['relu6 without a bias', 16, sequential(dense(33, 16, { activation: 'relu6', useBias: false }))],
  ]
  for (const [what, d, m] of models) {
    randomize(m, 11)
    const chain = DenseChain.of(m, d)!
    const direct = NativeDense.of(chain, d, native)
    const wasm = WasmDense.of(chain, d)!
    t.ok(direct, `${what}: native`)
    // Blocks of 4 rows and the rows left over; larger batches, then smaller again (its scratch memory is reused).
    for (const n of [1, 2, 3, 4, 5, 7, 16, 33, 2]) {
      const x = rows(n, d, n)
      t.same(Array.from(direct!.run(x, n)), Array.from(wasm.run(x, n)), `${path}, ${what}, ${n} rows: the same outputs`)
    }
    direct!.dispose()
    wasm.dispose()
    t.throws(() => direct!.run(rows(1, d, 1), 1), /disposed/, `${what}: refuses to run once disposed`)
  }
}

t.test('NaN as the wasm kernel has it: relu and relu6 clamp it (on x86), a linear layer keeps it', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const native = addon(t)
  const d = 6
  for (const activation of ['linear', 'relu', 'relu6'] as const) {
    const chain = DenseChain.of(randomize(sequential(tf.layers.dense({ units: 20, activation, inputShape: [d] })), 8), d)!
    const direct = NativeDense.of(chain, d, native)!
    const wasm = WasmDense.of(chain, d)!
    const x = rows(5, d, 3)
    x[2] = NaN
    x[d + 1] = Infinity
    x[2 * d + 3] = -Infinity
    const got = direct.run(x, 5)
    const want = wasm.run(x, 5)
    t.ok(got.every((v, i) => Object.is(v, want[i])), `${activation}: the same outputs, NaN and infinities included`)
    direct.dispose()
    wasm.dispose()
  }
})

t.test('activations that are not a clamp stay on the backend', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const native = addon(t)
  for (const activation of ['sigmoid', 'elu'] as const) {
    const chain = DenseChain.of(randomize(sequential(tf.layers.dense({ units: 9, activation, inputShape: [12] })), 3), 12)!
    t.equal(NativeDense.of(chain, 12, native), undefined, activation)
  }
})

t.test('not used off the wasm backend', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const native = addon(t)
  const chain = DenseChain.of(randomize(sequential(tf.layers.dense({ units: 9, inputShape: [12] })), 4), 12)!
  await tf.setBackend('cpu')
  t.teardown(() => tf.setBackend('wasm'))
  t.equal(NativeDense.of(chain, 12, native), undefined, 'cpu: the chain runs through tfjs')
})

t.test('the addon checks what it is given', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const native = addon(t)
  // x W + b on a heap of floats: W [2][3] at 0, b [3] at 6.
  const heap = new Float32Array([1, 2, 3, 4, 5, 6, 0.5, 0, -0.5])
  t.throws(() => native.create([]), /one layer or more/, 'no layer')
  t.throws(() => native.create([[0, 6, 2, 3, 0, 1], [0, 6, 2, 3, 0, 1]]), /each inDim the outDim before it/, 'layers that do not chain')
  t.throws(() => native.create([[-4, 6, 2, 3, 0, 1]]), /a layer is/, 'a negative offset')
  t.throws(() => native.create([[0, 6, 2, 3, 1, 0]]), /lo <= hi/, 'a clamp below its floor')
  t.throws(() => native.create([[0, 6, 2, 3, 'a' as unknown as number, 1]]), /a layer is/, 'a clamp that is not a number')
  const chain = native.create([[0, 6, 2, 3, -Infinity, Infinity]])
  const out = new Float32Array(3)
  native.run(chain, heap, new Float32Array([1, 1]), 1, out)
  t.same(Array.from(out), [5.5, 7, 8.5], 'x W + b')
  const relu = native.create([[0, -1, 2, 3, 0, 6]])
  native.run(relu, heap, new Float32Array([1, -1]), 1, out)
  t.same(Array.from(out), [0, 0, 0], 'no bias, relu6 clamps below')
  native.run(relu, heap, new Float32Array([2, 0]), 1, out)
  t.same(Array.from(out), [2, 4, 6], 'and above')
  native.run(chain, heap, new Float32Array(0), 0, new Float32Array(0))
  t.pass('no rows: nothing to do')
  t.throws(() => native.run(chain, heap, new Float32Array(3), 1, out), RangeError, 'x of the wrong length')
  t.throws(() => native.run(chain, heap, new Float32Array(2), 1, new Float32Array(4)), RangeError, 'out of the wrong length')
  t.throws(() => native.run(chain, heap.subarray(0, 8), new Float32Array(2), 1, out), /past the end of the heap/, 'weights past the heap')
  native.free(chain)
  native.free(chain)
  t.throws(() => native.run(chain, heap, new Float32Array(2), 1, out), /on a live chain/, 'a freed chain')
  native.free(relu)
})

t.test('the backend choice turns it on and off, here and on the engine thread', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const lines: string[] = []
  const log = { ...quiet, info: (_: object, msg: string) => void lines.push(msg) }
  const on = await selectBackend('wasm', log, true)
  const off = await selectBackend('wasm', log, false)
  t.equal(on.nativeDense, addon(t).vectors, 'on: the vectors it runs on')
  t.equal(off.nativeDense, undefined, 'off')
  t.match(lines, [/Dense layers native/, /Dense layers on its own kernel: MHE_NATIVE_DENSE=false/], 'the log line says which')
  const made = await makeHeadsBundle(mkdtempSync(join(tmpdir(), 'mhe-native-')), { featureDim: 16, heads: [5, 6], numLabels: 30, seed: 3, outputs: 'concat' })
  const files = await readBundleFiles(made.dir)
  const x = rows(3, 16, 5)
  const answers = async (choice: typeof on) => {
    const engine = await Engine.create(await loadModel(files), choice)
    const got = await engine.predict(x.slice(), 3, [3, 1, 2])
    engine.dispose()
    return got
  }
  t.same(await answers(on), await answers(off), 'the same answers with and without it')
  for (const nativeDense of [true, false]) {
    const thread = await EngineThread.start({ modelDir: made.dir, backend: 'wasm', nativeDense, manifest: made.manifest, log: quiet })
    t.equal(thread.backend.nativeDense !== undefined, nativeDense, `engine thread, MHE_NATIVE_DENSE=${nativeDense}`)
    await thread.dispose()
  }
})
