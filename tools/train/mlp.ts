// MLP backbone + H softmax heads, trained with hand-written backprop: the sparse input layer runs in plain JS
// (only the rows of the n-grams present are read and updated), the dense layers and heads run on tfjs.
// Hand-written because tfjs-backend-wasm has no UnsortedSegmentSum (gather's gradient) and its transposed
// matMul in autodiff is ~50x slower than an explicit transpose here.

import * as tf from '@tensorflow/tfjs'
import { decompose, exactTopK, idSpace, mergeTopK, outputWidth, type Candidate, type HeadList } from '../../src/mhe/codec.js'
import { mulberry32, type Rng } from './typos.js'

/** A batch of sparse feature rows in CSR form. */
export interface SparseBatch {
  size: number
  /** Row r's entries are offsets[r]..offsets[r+1]-1. */
  offsets: Int32Array
  indices: Int32Array
  values: Float32Array
}

export function toSparseBatch(rows: readonly { indices: Int32Array; values: Float32Array }[]): SparseBatch {
  const offsets = new Int32Array(rows.length + 1)
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.indices.length))
  const indices = new Int32Array(offsets[rows.length]!)
  const values = new Float32Array(indices.length)
  rows.forEach((r, i) => {
    indices.set(r.indices, offsets[i]!)
    values.set(r.values, offsets[i]!)
  })
  return { size: rows.length, offsets, indices, values }
}

export interface MlpConfig {
  featureDim: number
  /** Hidden widths; the first is the sparse input layer, the others dense ReLU layers. */
  hidden: number[]
  heads: number[]
  numLabels: number
  seed: number
}

export interface StepResult {
  loss: number
  /** Fraction of the batch whose every head was right (= composed label right). */
  accuracy: number
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

const BETA1 = 0.9
const BETA2 = 0.999
const EPS = 1e-8

interface DenseLayer {
  w: tf.Variable
  b: tf.Variable
  mw: tf.Variable
  vw: tf.Variable
  mb: tf.Variable
  vb: tf.Variable
}

/** Adam on p[from..to) with gradient grad[gOff..]; step = lr / (1 - beta1^t), invBc2 = 1 / (1 - beta2^t). */
function adamRange(p: Float32Array, m: Float32Array, v: Float32Array, grad: Float32Array, from: number, to: number, gOff: number, step: number, invBc2: number): void {
  const shift = gOff - from
  for (let i = from; i < to; i++) {
    const d = grad[i + shift]!
    const mi = BETA1 * m[i]! + (1 - BETA1) * d
    const vi = BETA2 * v[i]! + (1 - BETA2) * d * d
    m[i] = mi
    v[i] = vi
    p[i]! -= (step * mi) / (Math.sqrt(vi * invBc2) + EPS)
  }
}

/** The trainable model. Call dispose() when done. */
export class MheMlp {
  readonly cfg: MlpConfig
  readonly outDim: number
  private readonly h1: number
  /** Sparse layer kernel [featureDim, h1] and bias, with Adam moments. */
  private readonly w1: Float32Array
  private readonly b1: Float32Array
  private readonly mw1: Float32Array
  private readonly vw1: Float32Array
  private readonly mb1: Float32Array
  private readonly vb1: Float32Array
  private readonly grad1: Float32Array
  private readonly slot: Int32Array
  private readonly dense: DenseLayer[] = []
  /** local[h][id]: head h's local id of global label id. */
  private readonly local: Int32Array[]
  private t = 0

  constructor(cfg: MlpConfig) {
    this.cfg = cfg
    const product = idSpace(cfg.heads)
    if (product < cfg.numLabels) throw new Error(`heads ${cfg.heads.join(',')} cover ${product} ids, fewer than ${cfg.numLabels} labels`)
    if (cfg.hidden.length === 0) throw new Error('at least one hidden layer is needed')
    this.outDim = outputWidth(cfg.heads)
    const rng = mulberry32(cfg.seed)
    const h1 = (this.h1 = cfg.hidden[0]!)
    // Inputs are L2-normalised, so a unit-scale kernel keeps pre-activations near unit variance.
    this.w1 = new Float32Array(cfg.featureDim * h1)
    for (let i = 0; i < this.w1.length; i++) this.w1[i] = gaussian(rng) * 0.5
    this.b1 = new Float32Array(h1)
    this.mw1 = new Float32Array(this.w1.length)
    this.vw1 = new Float32Array(this.w1.length)
    this.mb1 = new Float32Array(h1)
    this.vb1 = new Float32Array(h1)
    this.grad1 = new Float32Array(this.w1.length)
    this.slot = new Int32Array(cfg.featureDim).fill(-1)
    const widths = [...cfg.hidden, this.outDim]
    for (let l = 1; l < widths.length; l++) {
      const fanIn = widths[l - 1]!
      const fanOut = widths[l]!
      const last = l === widths.length - 1
      const std = last ? Math.sqrt(1 / fanIn) : Math.sqrt(2 / fanIn)
      const w = new Float32Array(fanIn * fanOut)
      for (let i = 0; i < w.length; i++) w[i] = gaussian(rng) * std
      const zeros = (shape: number[]) => tf.variable(tf.zeros(shape), false)
      this.dense.push({
        w: tf.variable(tf.tensor2d(w, [fanIn, fanOut]), false),
        b: tf.variable(tf.zeros([fanOut]), false),
        mw: zeros([fanIn, fanOut]),
        vw: zeros([fanIn, fanOut]),
        mb: zeros([fanOut]),
        vb: zeros([fanOut]),
      })
    }
    this.local = cfg.heads.map(() => new Int32Array(cfg.numLabels))
    for (let id = 0; id < cfg.numLabels; id++) {
      const ys = decompose(id, cfg.heads)
      ys.forEach((y, h) => (this.local[h]![id] = y))
    }
  }

  /** Number of classifier (head) parameters: the last layer's weights and biases. */
  headParams(): number {
    return (this.cfg.hidden[this.cfg.hidden.length - 1]! + 1) * this.outDim
  }

  /** Sparse input layer forward: ReLU(x W1 + b1), [size, h1] row-major. */
  private sparseForward(batch: SparseBatch): Float32Array {
    const h1 = this.h1
    const w1 = this.w1
    const out = new Float32Array(batch.size * h1)
    for (let r = 0; r < batch.size; r++) {
      const o = r * h1
      out.set(this.b1, o)
      for (let j = batch.offsets[r]!; j < batch.offsets[r + 1]!; j++) {
        const v = batch.values[j]!
        const base = batch.indices[j]! * h1
        for (let k = 0; k < h1; k++) out[o + k]! += v * w1[base + k]!
      }
      for (let k = 0; k < h1; k++) if (out[o + k]! < 0) out[o + k] = 0
    }
    return out
  }

  /** Logits [size, sum of heads] of a batch (for evaluation). Caller disposes. */
  logits(batch: SparseBatch): tf.Tensor2D {
    const a1 = this.sparseForward(batch)
    return tf.tidy(() => {
      let a: tf.Tensor2D = tf.tensor2d(a1, [batch.size, this.h1])
      this.dense.forEach((layer, l) => {
        const z = tf.add(tf.matMul(a, layer.w), layer.b) as tf.Tensor2D
        a = l === this.dense.length - 1 ? z : tf.relu(z)
      })
      return a
    })
  }

  /** One Adam step on a batch with global label ids; lr is this step's learning rate. */
  async step(batch: SparseBatch, labels: Int32Array, lr: number): Promise<StepResult> {
    const n = batch.size
    const a1 = this.sparseForward(batch)
    this.t++
    const bc1 = 1 - Math.pow(BETA1, this.t)
    const bc2 = 1 - Math.pow(BETA2, this.t)
    const heads = this.cfg.heads
    const [lossT, accT, dA1T] = tf.tidy(() => {
      const acts: tf.Tensor2D[] = [tf.tensor2d(a1, [n, this.h1])]
      for (let l = 0; l < this.dense.length; l++) {
        const layer = this.dense[l]!
        const z = tf.add(tf.matMul(acts[l]!, layer.w), layer.b) as tf.Tensor2D
        acts.push(l === this.dense.length - 1 ? z : tf.relu(z))
      }
      const logits = acts[acts.length - 1]!
      const parts = heads.length === 1 ? [logits] : tf.split(logits, heads, 1)
      let loss = tf.scalar(0)
      let allRight: tf.Tensor = tf.ones([n], 'bool')
      const grads: tf.Tensor[] = []
      parts.forEach((part, h) => {
        const ids = new Int32Array(n)
        for (let i = 0; i < n; i++) ids[i] = this.local[h]![labels[i]!]!
        const idsT = tf.tensor1d(ids, 'int32')
        const onehot = tf.oneHot(idsT, heads[h]!)
        const logp = tf.logSoftmax(part)
        loss = tf.add(loss, tf.neg(tf.div(tf.sum(tf.mul(logp, onehot)), n)))
        grads.push(tf.div(tf.sub(tf.exp(logp), onehot), n))
        allRight = tf.logicalAnd(allRight, tf.equal(tf.argMax(part, 1), idsT))
      })
      let g = grads.length === 1 ? grads[0]! : tf.concat(grads, 1)
      // Backward through the dense layers, updating each with Adam as its gradient is known.
      for (let l = this.dense.length - 1; l >= 0; l--) {
        const layer = this.dense[l]!
        const aIn = acts[l]!
        const dw = tf.matMul(tf.transpose(aIn), g)
        const db = tf.sum(g, 0)
        let gIn = tf.matMul(g, tf.transpose(layer.w))
        gIn = tf.mul(gIn, tf.step(aIn)) // ReLU mask (aIn is the previous ReLU's output, or a1)
        for (const [p, m, v, d] of [[layer.w, layer.mw, layer.vw, dw], [layer.b, layer.mb, layer.vb, db]] as const) {
          const m2 = tf.add(tf.mul(m, BETA1), tf.mul(d, 1 - BETA1))
          const v2 = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(d), 1 - BETA2))
          m.assign(m2)
          v.assign(v2)
          p.assign(tf.sub(p, tf.div(tf.mul(m2, lr / bc1), tf.add(tf.sqrt(tf.div(v2, bc2)), EPS))))
        }
        g = gIn
      }
      return [loss, tf.mean(tf.cast(allRight, 'float32')), g]
    })
    const [lossV, accV, dA1] = await Promise.all([lossT.data(), accT.data(), dA1T.data()])
    tf.dispose([lossT, accT, dA1T])
    this.sparseBackward(batch, dA1 as Float32Array, lr, bc1, bc2)
    return { loss: lossV[0]!, accuracy: accV[0]! }
  }

  /** Gradient of the sparse layer (dA1 already masked by its ReLU) and a lazy Adam step on the rows touched. */
  private sparseBackward(batch: SparseBatch, dA1: Float32Array, lr: number, bc1: number, bc2: number): void {
    const h1 = this.h1
    const touched: number[] = []
    const g = this.grad1
    const slot = this.slot
    for (let r = 0; r < batch.size; r++) {
      const o = r * h1
      for (let j = batch.offsets[r]!; j < batch.offsets[r + 1]!; j++) {
        const row = batch.indices[j]!
        if (slot[row] === -1) {
          slot[row] = touched.length
          touched.push(row)
          g.fill(0, row * h1, row * h1 + h1)
        }
        const v = batch.values[j]!
        const base = row * h1
        for (let k = 0; k < h1; k++) g[base + k]! += v * dA1[o + k]!
      }
    }
    for (const row of touched) {
      adamRange(this.w1, this.mw1, this.vw1, g, row * h1, row * h1 + h1, row * h1, lr / bc1, 1 / bc2)
      this.slot[row] = -1
    }
    const db1 = new Float32Array(h1)
    for (let r = 0; r < batch.size; r++) for (let k = 0; k < h1; k++) db1[k]! += dA1[r * h1 + k]!
    adamRange(this.b1, this.mb1, this.vb1, db1, 0, h1, 0, lr / bc1, 1 / bc2)
  }

  /** Exact top-k labels per row (codec merge over the heads' log-softmax). */
  async topK(batch: SparseBatch, k: number): Promise<Candidate[][]> {
    const logits = this.logits(batch)
    const out = await topKFromLogits(logits, this.cfg.heads, this.cfg.numLabels, k)
    logits.dispose()
    return out
  }

  /** A tf.LayersModel with the trained weights: input [batch, featureDim], output logits [batch, sum of heads]. */
  async toLayersModel(): Promise<tf.LayersModel> {
    const widths = [...this.cfg.hidden, this.outDim]
    const model = tf.sequential()
    widths.forEach((units, l) => {
      model.add(
        tf.layers.dense({
          units,
          activation: l === widths.length - 1 ? 'linear' : 'relu',
          name: l === widths.length - 1 ? 'heads' : `hidden${l + 1}`,
          ...(l === 0 ? { inputShape: [this.cfg.featureDim] } : {}),
        }),
      )
    })
    const weights: tf.Tensor[] = [tf.tensor2d(this.w1, [this.cfg.featureDim, this.h1]), tf.tensor1d(this.b1)]
    for (const layer of this.dense) weights.push(layer.w, layer.b)
    model.setWeights(weights)
    tf.dispose(weights.slice(0, 2))
    return model
  }

  dispose(): void {
    for (const l of this.dense) tf.dispose([l.w, l.b, l.mw, l.vw, l.mb, l.vb])
  }
}

/** Exact top-k per row from concatenated head logits [n, sum of heads]. */
export async function topKFromLogits(logits: tf.Tensor2D, heads: readonly number[], numLabels: number, k: number): Promise<Candidate[][]> {
  const n = logits.shape[0]
  const kPrime = Math.max(k, 8)
  const parts = tf.tidy(() => {
    const split = heads.length === 1 ? [logits] : tf.split(logits, [...heads], 1)
    return split.map((p, h) => {
      const { values, indices } = tf.topk(tf.logSoftmax(p), Math.min(heads[h]!, kPrime))
      return [values, indices] as const
    })
  })
  const data = await Promise.all(parts.map(async ([v, i]) => [await v.data(), await i.data()] as const))
  tf.dispose(parts.flat())
  const out: Candidate[][] = []
  for (let r = 0; r < n; r++) {
    const lists: HeadList[] = data.map(([v, i], h) => {
      const m = Math.min(heads[h]!, kPrime)
      return { indices: i.subarray(r * m, (r + 1) * m), logProbs: v.subarray(r * m, (r + 1) * m) }
    })
    let res = mergeTopK(lists, heads, numLabels, k, kPrime)
    if (res === null) {
      // Rare: invalid ids crowd the candidates; fall back to the full rows.
      const full = tf.tidy(() => (heads.length === 1 ? [logits] : tf.split(logits, [...heads], 1)).map((p) => tf.logSoftmax(tf.slice(p, [r, 0], [1, -1]))))
      const rows = await Promise.all(full.map((t) => t.data()))
      tf.dispose(full)
      res = exactTopK(rows, heads, numLabels, k)
    }
    out.push(res)
  }
  return out
}
