// Inference engine: one model call per batch, per-head log-softmax + top-k' on the tfjs backend, then the codec's
// exact merge in JS. Only k' numbers per head per instance cross to JS, except in the rare widening fallback.

import * as tf from '@tensorflow/tfjs'
import { exactTopK, mergeTopK, type Candidate, type HeadList } from './codec.js'
import type { Bundle, OutputLayout } from './bundle/load.js'
import type { Manifest } from './bundle/manifest.js'
import type { LabelStore } from './labels.js'

// Probabilities are clipped before the log so a 0 becomes a very unlikely label instead of -Infinity.
const MIN_PROB = 1e-37

export class Engine {
  readonly manifest: Manifest
  readonly labels: LabelStore
  readonly backend: string
  private readonly model: tf.LayersModel | tf.GraphModel
  private readonly layout: OutputLayout
  private readonly heads: readonly number[]
  private readonly sumHeads: number
  /** ∏n_h > C: composed ids past the end exist and the merge may need the full rows. */
  private readonly hasInvalidIds: boolean
  private disposed = false

  private constructor(bundle: Bundle, backend: string) {
    this.manifest = bundle.manifest
    this.labels = bundle.labels
    this.backend = backend
    this.model = bundle.model
    this.layout = bundle.layout
    this.heads = bundle.manifest.heads
    this.sumHeads = this.heads.reduce((a, n) => a + n, 0)
    this.hasInvalidIds = this.heads.reduce((a, n) => a * n, 1) > bundle.manifest.numLabels
  }

  /** Wraps a loaded bundle; `backend` is the active tfjs backend's name (for reporting). */
  static async create(bundle: Bundle, backend: string): Promise<Engine> {
    await tf.ready()
    return new Engine(bundle, backend)
  }

  /**
   * features: n * featureDim float32, row-major; topK[i] = k wanted for instance i.
   * Returns, per instance, its exact top-k valid labels, best first (fewer only if the model has fewer labels).
   */
  async predict(features: Float32Array, n: number, topK: readonly number[]): Promise<Candidate[][]> {
    if (this.disposed) throw new Error('engine is disposed')
    const d = this.manifest.featureDim
    if (!Number.isInteger(n) || n < 0) throw new Error(`n must be a non-negative integer, got ${n}`)
    if (!(features instanceof Float32Array)) throw new Error('features must be a Float32Array')
    if (features.length !== n * d) {
      throw new Error(`features has ${features.length} values, expected n * featureDim = ${n} * ${d} = ${n * d}`)
    }
    if (topK.length !== n) throw new Error(`topK has ${topK.length} entries, expected one per instance (${n})`)
    let kMax = 0
    for (let i = 0; i < n; i++) {
      const k = topK[i]!
      if (!Number.isInteger(k) || k < 1) throw new Error(`topK[${i}] must be a positive integer, got ${k}`)
      if (k > kMax) kMax = k
    }
    if (n === 0) return []

    const heads = this.heads
    const kPrimes = heads.map((nh) => Math.min(nh, kMax))
    const { values, indices, logProbs } = tf.tidy(() => {
      const perHead = this.logProbs(tf.tensor2d(features, [n, d], 'float32'))
      const tops = perHead.map((lp, h) => tf.topk(lp, kPrimes[h]!, true))
      const cat = <T extends tf.Tensor>(ts: T[]): T => (ts.length === 1 ? ts[0]! : (tf.concat(ts, 1) as T))
      return {
        values: cat(tops.map((t) => t.values)),
        indices: cat(tops.map((t) => t.indices)),
        // Kept only when ids past C exist: the fallback then reads a few full rows from it.
        logProbs: this.hasInvalidIds ? cat(perHead) : undefined,
      }
    })

    try {
      const [vals, idxs] = (await Promise.all([values.data(), indices.data()])) as [Float32Array, Int32Array]
      const width = kPrimes.reduce((a, k) => a + k, 0)
      const results = new Array<Candidate[]>(n)
      const retry: number[] = []
      for (let i = 0; i < n; i++) {
        const lists: HeadList[] = []
        let off = i * width
        for (const k of kPrimes) {
          lists.push({ indices: idxs.subarray(off, off + k), logProbs: vals.subarray(off, off + k) })
          off += k
        }
        const merged = mergeTopK(lists, heads, this.manifest.numLabels, topK[i]!, kMax)
        if (merged === null) retry.push(i)
        else results[i] = merged
      }
      if (retry.length > 0) await this.widen(retry, topK, logProbs, results)
      return results
    } finally {
      values.dispose()
      indices.dispose()
      logProbs?.dispose()
    }
  }

  /** Exact top-k from the full log-probability rows of the instances whose candidates were crowded out by ids >= C. */
  private async widen(rows: number[], topK: readonly number[], logProbs: tf.Tensor | undefined, results: Candidate[][]) {
    // With ∏n_h = C every composed id is valid, so mergeTopK cannot come back empty-handed.
    if (logProbs === undefined) throw new Error('internal: top-k merge needs widening but every id is valid')
    const picked = tf.tidy(() => tf.gather(logProbs, tf.tensor1d(rows, 'int32'), 0))
    let full: Float32Array
    try {
      full = (await picked.data()) as Float32Array
    } finally {
      picked.dispose()
    }
    rows.forEach((i, r) => {
      const perHead: Float32Array[] = []
      let off = r * this.sumHeads
      for (const nh of this.heads) {
        perHead.push(full.subarray(off, off + nh))
        off += nh
      }
      results[i] = exactTopK(perHead, this.heads, this.manifest.numLabels, topK[i]!)
    })
  }

  /** Per-head log-probabilities [n, n_h] for a batch; call inside tf.tidy. */
  private logProbs(x: tf.Tensor2D): tf.Tensor2D[] {
    const out = this.model instanceof tf.GraphModel ? this.model.execute(x) : this.model.predict(x)
    const outs = Array.isArray(out) ? out : [out]
    const n = x.shape[0]
    let perHead: tf.Tensor[]
    if (this.layout === 'split') {
      perHead = outs
    } else {
      const only = outs[0]!
      perHead = this.heads.length === 1 ? [only] : tf.split(only, this.heads as number[], 1)
    }
    return perHead.map((t, h) => {
      const nh = this.heads[h]!
      if (t.rank !== 2 || t.shape[0] !== n || t.shape[1] !== nh) {
        throw new Error(`model output for head ${h} has shape [${t.shape.join(', ')}], expected [${n}, ${nh}]`)
      }
      const f = t.dtype === 'float32' ? t : tf.cast(t, 'float32')
      return (this.manifest.outputs === 'probabilities' ? tf.log(tf.clipByValue(f, MIN_PROB, 1)) : tf.logSoftmax(f)) as tf.Tensor2D
    })
  }

  /** Runs one batch of zeros so kernels and buffers exist before the first request. */
  async warmUp(batchSize = 1): Promise<void> {
    await this.predict(new Float32Array(batchSize * this.manifest.featureDim), batchSize, new Array<number>(batchSize).fill(1))
  }

  numTensors(): number {
    return tf.memory().numTensors
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.model.dispose()
  }
}
