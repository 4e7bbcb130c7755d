// Small tfjs-layers models of Dense layers for the dense-chain and wasm-dense tests.
import * as tf from '@tensorflow/tfjs'

/** A sequential model of these layers. */
export function sequential(...layers: tf.layers.Layer[]): tf.LayersModel {
  const m = tf.sequential()
  for (const l of layers) m.add(l)
  return m
}

/** Random weights and biases, from `seed` on (a new Dense layer's biases are zeros, which would hide a bias left out). */
export function randomize(model: tf.LayersModel, seed: number): tf.LayersModel {
  for (const l of model.layers) l.setWeights(l.getWeights().map((w) => tf.randomNormal(w.shape, 0, 1, 'float32', seed++)))
  return model
}
