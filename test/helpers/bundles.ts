// Test bundles with KNOWN weights, and a plain-loop reference top-k to check the service against.
// The reference deliberately shares no code with src/mhe/codec.ts or src/engine/engine.ts.

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { writeBundle } from '../../tools/bundle/write.js'
import { MANIFEST_FORMAT, type Manifest } from '../../src/bundle/manifest.js'
import { mulberry32 } from '../../tools/lib/rng.js'

/** Per head: kernel [featureDim, n_h] row-major (Keras layout) and bias [n_h]. */
export interface HeadWeights {
  kernel: Float32Array[]
  bias: Float32Array[]
}

export interface HeadsBundleOptions {
  featureDim: number
  heads: number[]
  numLabels: number
  weights?: HeadWeights
  seed?: number
  /** 'split': one Dense per head (H outputs); 'concat': one [batch, Σn_h] output. */
  outputs?: 'split' | 'concat'
  /** Written to mhe.json "outputs"; 'probabilities' puts a softmax on each head. */
  activation?: 'logits' | 'probabilities'
  labelPrefix?: string
  name?: string
}

export interface MadeBundle {
  dir: string
  manifest: Manifest
  weights: HeadWeights
  labels: string[]
}

/** Small seeded PRNG (mulberry32): uniform in [0, 1). */
export const rng = mulberry32

export function randomWeights(featureDim: number, heads: readonly number[], seed: number, scale = 1): HeadWeights {
  const r = rng(seed)
  const u = () => (r() * 2 - 1) * scale
  return {
    kernel: heads.map((n) => Float32Array.from({ length: featureDim * n }, u)),
    bias: heads.map((n) => Float32Array.from({ length: n }, u)),
  }
}

export function randomFeatures(n: number, featureDim: number, seed: number): Float32Array {
  const r = rng(seed)
  return Float32Array.from({ length: n * featureDim }, () => r() * 2 - 1)
}

/** Kernel [d, Σn_h] whose columns are the heads' columns side by side, and the matching bias. */
export function concatWeights(w: HeadWeights, featureDim: number, heads: readonly number[]): { kernel: Float32Array; bias: Float32Array } {
  const sum = heads.reduce((a, n) => a + n, 0)
  const kernel = new Float32Array(featureDim * sum)
  for (let i = 0; i < featureDim; i++) {
    let col = 0
    heads.forEach((n, h) => {
      for (let j = 0; j < n; j++) kernel[i * sum + col + j] = w.kernel[h]![i * n + j]!
      col += n
    })
  }
  const bias = new Float32Array(sum)
  let col = 0
  heads.forEach((n, h) => {
    bias.set(w.bias[h]!, col)
    col += n
  })
  return { kernel, bias }
}

function setWeights(layer: tf.layers.Layer, kernel: Float32Array, bias: Float32Array): void {
  const ts = [tf.tensor2d(kernel, [kernel.length / bias.length, bias.length]), tf.tensor1d(bias)]
  layer.setWeights(ts) // copies into the layer's variables
  tf.dispose(ts)
}

/** Builds input -> Dense per head (or one Dense of Σn_h) with the given weights and writes it with writeBundle. */
export async function makeHeadsBundle(dir: string, opts: HeadsBundleOptions): Promise<MadeBundle> {
  const { featureDim: d, heads, numLabels } = opts
  const weights = opts.weights ?? randomWeights(d, heads, opts.seed ?? 1)
  const layout = opts.outputs ?? 'split'
  const activation = opts.activation ?? 'logits'
  const act = activation === 'probabilities' ? 'softmax' : 'linear'
  const labels = Array.from({ length: numLabels }, (_, i) => `${opts.labelPrefix ?? 'label-'}${i}`)

  const input = tf.input({ shape: [d], name: 'features' })
  let model: tf.LayersModel
  if (layout === 'concat' && activation === 'logits') {
    const dense = tf.layers.dense({ units: heads.reduce((a, n) => a + n, 0), name: 'heads' })
    model = tf.model({ inputs: input, outputs: dense.apply(input) as tf.SymbolicTensor })
    const c = concatWeights(weights, d, heads)
    setWeights(dense, c.kernel, c.bias)
  } else {
    const denses = heads.map((n, h) => tf.layers.dense({ units: n, activation: act, name: `head_${h}` }))
    const outs = denses.map((l) => l.apply(input) as tf.SymbolicTensor)
    const output = layout === 'concat' && outs.length > 1 ? (tf.layers.concatenate({ axis: -1 }).apply(outs) as tf.SymbolicTensor) : outs
    model = tf.model({ inputs: input, outputs: output })
    denses.forEach((l, h) => setWeights(l, weights.kernel[h]!, weights.bias[h]!))
  }
  try {
    const manifest = await writeBundle(dir, {
      manifest: { name: opts.name ?? 'test', version: '1', featureDim: d, heads, numLabels, outputs: activation },
      model,
      labels,
    })
    return { dir, manifest, weights, labels }
  } finally {
    model.dispose()
  }
}

/**
 * A hand-written TensorFlow.js graph model (Placeholder -> MatMul -> BiasAdd, concat output), to cover GraphModel
 * loading without a Python converter.
 */
export async function makeGraphBundle(dir: string, opts: Omit<HeadsBundleOptions, 'outputs' | 'activation'>): Promise<MadeBundle> {
  const { featureDim: d, heads, numLabels } = opts
  const weights = opts.weights ?? randomWeights(d, heads, opts.seed ?? 1)
  const sum = heads.reduce((a, n) => a + n, 0)
  const c = concatWeights(weights, d, heads)
  const dim = (...sizes: number[]) => ({ dim: sizes.map((s) => ({ size: String(s) })) })
  const f32 = { type: 'DT_FLOAT' }
  const modelJson = {
    format: 'graph-model',
    generatedBy: 'test/helpers/bundles.ts',
    convertedBy: null,
    modelTopology: {
      node: [
        { name: 'features', op: 'Placeholder', attr: { dtype: f32, shape: { shape: dim(-1, d) } } },
        { name: 'kernel', op: 'Const', attr: { dtype: f32, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dim(d, sum) } } } },
        { name: 'bias', op: 'Const', attr: { dtype: f32, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dim(sum) } } } },
        { name: 'matmul', op: 'MatMul', input: ['features', 'kernel'], attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } } },
        { name: 'logits', op: 'BiasAdd', input: ['matmul', 'bias'], attr: { T: f32, data_format: { s: 'TkhXQw==' } } },
      ],
      library: {},
      versions: { producer: 1 },
    },
    weightsManifest: [
      {
        paths: ['weights.bin'],
        weights: [
          { name: 'kernel', shape: [d, sum], dtype: 'float32' },
          { name: 'bias', shape: [sum], dtype: 'float32' },
        ],
      },
    ],
  }
  const labels = Array.from({ length: numLabels }, (_, i) => `${opts.labelPrefix ?? 'label-'}${i}`)
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    name: opts.name ?? 'graph-test',
    version: '1',
    featureDim: d,
    heads,
    numLabels,
    outputs: 'logits',
    model: 'model.json',
    labels: 'labels.txt',
  }
  await mkdir(dir, { recursive: true })
  const bin = new Uint8Array(c.kernel.byteLength + c.bias.byteLength)
  bin.set(new Uint8Array(c.kernel.buffer), 0)
  bin.set(new Uint8Array(c.bias.buffer), c.kernel.byteLength)
  await writeFile(join(dir, 'weights.bin'), bin)
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson))
  await writeFile(join(dir, 'labels.txt'), labels.join('\n') + '\n')
  await writeFile(join(dir, 'mhe.json'), JSON.stringify(manifest, null, 2))
  return { dir, manifest, weights, labels }
}

export interface RefCandidate {
  id: number
  logScore: number
  headIds: number[]
}

/** Per-head log-softmax of x·K_h + b_h, in float64 with plain loops. */
export function referenceLogProbs(x: ArrayLike<number>, weights: HeadWeights, heads: readonly number[]): number[][] {
  const d = x.length
  return heads.map((n, h) => {
    const K = weights.kernel[h]!
    const logits: number[] = []
    for (let j = 0; j < n; j++) {
      let z = weights.bias[h]![j]!
      for (let i = 0; i < d; i++) z += x[i]! * K[i * n + j]!
      logits.push(z)
    }
    const max = Math.max(...logits)
    const lse = max + Math.log(logits.reduce((a, z) => a + Math.exp(z - max), 0))
    return logits.map((z) => z - lse)
  })
}

/** Brute force over the whole product of heads (head 1 most significant), ids >= numLabels removed, best first. */
export function referenceTopK(
  x: ArrayLike<number>,
  weights: HeadWeights,
  heads: readonly number[],
  numLabels: number,
  k: number,
): RefCandidate[] {
  const lp = referenceLogProbs(x, weights, heads)
  const all: RefCandidate[] = []
  const total = heads.reduce((a, n) => a * n, 1)
  for (let id = 0; id < Math.min(total, numLabels); id++) {
    const headIds = new Array<number>(heads.length)
    let rest = id
    let logScore = 0
    for (let h = heads.length - 1; h >= 0; h--) {
      headIds[h] = rest % heads[h]!
      rest = Math.floor(rest / heads[h]!)
      logScore += lp[h]![headIds[h]!]!
    }
    all.push({ id, logScore, headIds })
  }
  all.sort((a, b) => b.logScore - a.logScore || a.id - b.id)
  return all.slice(0, k)
}
