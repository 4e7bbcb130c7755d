// DenseChain: a plain stack of Dense layers runs as fused matMuls with the model's own outputs; anything else
// (several outputs, another layer type, an activation fused matMul does not apply) is left to LayersModel.execute.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../src/engine/backend.js'
import { DenseChain } from '../../src/engine/dense-chain.js'
import { randomize, sequential } from '../helpers/dense-models.js'

t.before(async () => {
  await selectBackend('wasm', { info() {}, warn() {} })
})

const d = 12


/** The chain's output and the model's own for the same rows, as arrays. */
function both(model: tf.LayersModel, chain: DenseChain): [number[][], number[][]] {
  return tf.tidy(() => {
    const x = tf.randomNormal([5, d], 0, 1, 'float32', 3) as tf.Tensor2D
    const want = model.execute(x, model.outputs[0]!.name) as tf.Tensor
    return [chain.run(x).arraySync() as number[][], want.arraySync() as number[][]]
  })
}

t.test('a stack of Dense layers: the same outputs as the model', async (t) => {
  const models: [string, tf.LayersModel][] = [
    ['heads on the features (functional)', (() => {
      const input = tf.input({ shape: [d] })
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 9 }).apply(input) as tf.SymbolicTensor })
    })()],
    ['a hidden relu layer and the heads (sequential)', sequential(tf.layers.dense({ units: 7, activation: 'relu', inputShape: [d] }), tf.layers.dense({ units: 9 }))],
    ['sigmoid heads without a bias', sequential(tf.layers.dense({ units: 9, activation: 'sigmoid', useBias: false, inputShape: [d] }))],
  ]
  for (const [what, model] of models) {
    const chain = DenseChain.of(randomize(model, 11), d)
    t.ok(chain, `${what}: a chain`)
    const [got, want] = both(model, chain!)
    const diff = Math.max(...got.flatMap((row, i) => row.map((v, j) => Math.abs(v - want[i]![j]!))))
    t.ok(diff <= 1e-6, `${what}: same outputs (largest difference ${diff})`)
  }
})

t.test('anything else is left to the model', async (t) => {
  const input = tf.input({ shape: [d] })
  const split = tf.model({ inputs: input, outputs: [4, 5].map((n) => tf.layers.dense({ units: n }).apply(input) as tf.SymbolicTensor) })
  t.equal(DenseChain.of(split, d), undefined, 'several outputs (one per head)')
  const softmax = sequential(tf.layers.dense({ units: 9, activation: 'softmax', inputShape: [d] }))
  t.equal(DenseChain.of(softmax, d), undefined, 'an activation fused matMul does not apply')
  const dropout = sequential(tf.layers.dense({ units: 9, inputShape: [d] }), tf.layers.dropout({ rate: 0.5 }))
  t.equal(DenseChain.of(dropout, d), undefined, 'another layer type')
  const a = tf.layers.dense({ units: 6 }).apply(input) as tf.SymbolicTensor
  const skip = tf.layers.dense({ units: 9 }).apply(tf.layers.concatenate().apply([input, a]) as tf.SymbolicTensor) as tf.SymbolicTensor
  t.equal(DenseChain.of(tf.model({ inputs: input, outputs: skip }), d), undefined, 'a branch')
})
