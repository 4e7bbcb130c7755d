// WasmDense: the dense chain as direct calls into the wasm backend's kernel gives the chain's outputs for every
// batch size (its buffers grow), holds no tensor per batch, frees its buffers, and is not used off wasm.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../src/engine/backend.js'
import { DenseChain } from '../../src/engine/dense-chain.js'
import { WasmDense } from '../../src/engine/wasm-dense.js'
import { randomize, sequential } from '../helpers/dense-models.js'

t.before(async () => {
  await selectBackend('wasm', { info() {}, warn() {} })
})

const d = 12

/** A sequential model with random weights and biases. */
const model = (...layers: tf.layers.Layer[]): tf.LayersModel => randomize(sequential(...layers), 5)

function rows(n: number, seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal([n, d], 0, 1, 'float32', seed).dataSync() as Float32Array)
}

/** The chain's outputs through tfjs. */
function viaChain(chain: DenseChain, x: Float32Array, n: number): Float32Array {
  return tf.tidy(() => chain.run(tf.tensor2d(x, [n, d])).dataSync() as Float32Array)
}

t.test('the chain\'s own outputs, for batches of every size', async (t) => {
  const models: [string, tf.LayersModel][] = [
    ['heads on the features', model(tf.layers.dense({ units: 9, inputShape: [d] }))],
    ['a hidden relu layer and the heads', model(tf.layers.dense({ units: 7, activation: 'relu', inputShape: [d] }), tf.layers.dense({ units: 9 }))],
    ['sigmoid heads without a bias', model(tf.layers.dense({ units: 9, activation: 'sigmoid', useBias: false, inputShape: [d] }))],
  ]
  for (const [what, m] of models) {
    const chain = DenseChain.of(m, d)!
    const direct = WasmDense.of(chain, d)
    t.ok(direct, `${what}: direct`)
    const before = tf.memory().numTensors
    // 1, then larger batches (the buffers grow), then a smaller one again (reused).
    for (const n of [1, 3, 40, 7, 1]) {
      const x = rows(n, n)
      const got = direct!.run(x, n)
      t.same(Array.from(got), Array.from(viaChain(chain, x, n)), `${what}, ${n} rows: the same outputs`)
    }
    t.ok(tf.memory().numTensors <= before + 2 * 2, `${what}: no tensor per batch, only its buffers (${tf.memory().numTensors - before} more)`)
    direct!.dispose()
    t.throws(() => direct!.run(rows(1, 1), 1), /disposed/, `${what}: refuses to run once disposed`)
  }
})

t.test('dispose frees every buffer it made', async (t) => {
  const chain = DenseChain.of(model(tf.layers.dense({ units: 9, inputShape: [d] })), d)!
  const before = tf.memory().numTensors
  const direct = WasmDense.of(chain, d)!
  direct.run(rows(50, 2), 50)
  direct.dispose()
  t.equal(tf.memory().numTensors, before, 'back to the tensors before it')
})

t.test('rows of the wrong size are refused', async (t) => {
  const direct = WasmDense.of(DenseChain.of(model(tf.layers.dense({ units: 9, inputShape: [d] })), d)!, d)!
  t.throws(() => direct.run(new Float32Array(d + 1), 1), /expected 1 \* 12/)
  direct.dispose()
})

t.test('not used off the wasm backend', async (t) => {
  const chain = DenseChain.of(model(tf.layers.dense({ units: 9, inputShape: [d] })), d)!
  await tf.setBackend('cpu')
  t.teardown(() => tf.setBackend('wasm'))
  t.equal(WasmDense.of(chain, d), undefined, 'cpu: the chain runs through tfjs')
})
