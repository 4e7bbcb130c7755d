// Inference engine: one model call per batch, per-head log-softmax + top-k' on the tfjs backend, then the codec's
// exact merge in JS. Only k' numbers per head per instance cross to JS, except in the rare widening fallback.

import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import { GraphModel } from '@tensorflow/tfjs-converter'
import type { LayersModel } from '@tensorflow/tfjs-layers'
import { exactTopK, idSpace, mergeTopK, outputWidth, type Candidate, type HeadList } from '../mhe/codec.js'
import type { BundleModel, OutputLayout } from './model-load.js'
import type { Manifest } from '../bundle/manifest.js'
import type { BackendChoice } from './backend.js'
import type { FloatPool } from './float-pool.js'
import type { ModelEngine } from './model-engine.js'
import { BundleError } from '../errors.js'
import { DenseChain } from './dense-chain.js'
import { WasmDense } from './wasm-dense.js'
import { denseAddon, NativeDense } from './native-dense.js'
import { deviceBindingLimit, maxRowsPerCall, oversizeWeights, tensorBytes, type WeightInfo } from './webgpu.js'

// Probabilities are clipped before the log so a 0 becomes a very unlikely label instead of -Infinity.
const MIN_PROB = 1e-37
// On the in-process backends (wasm, cpu), up to this many outputs per instance (Σn_h), the whole rows are read and
// log-softmax + top-k' run in JS: one copy beats ~10 small backend kernels per head (MHE heads). Wider models (OHE
// over 10^5 labels) and the tensorflow backend keep everything on the backend so only k' numbers per head cross.
// See bench/README.md (engine, before/after).
export const JS_HEADS_MAX_WIDTH = 4096

/** The engine on this thread; thread-host.ts runs the same one on a worker thread. */
export class Engine implements ModelEngine {
  readonly manifest: Manifest
  readonly backend: BackendChoice
  /** Never called: a model on this thread cannot die apart from the process. */
  onFailure: ((err: Error) => void) | undefined
  recycle: FloatPool | undefined
  private readonly model: LayersModel | GraphModel
  /** The same model as fused matMuls when it is a plain stack of Dense layers (dense-chain.ts); run() prefers it. */
  private readonly chain: DenseChain | undefined
  /** The chain as native kernel calls (native-dense.ts, where the backend choice has it on), else on wasm as direct
   * kernel calls (wasm-dense.ts); predictInJs prefers it. */
  private readonly direct: NativeDense | WasmDense | undefined
  private readonly layout: OutputLayout
  private readonly heads: readonly number[]
  private readonly sumHeads: number
  /** ∏n_h: ids the heads compose. */
  private readonly idSpace: number
  /** ∏n_h > C: composed ids past the end exist and the merge may need the full rows. */
  private readonly hasInvalidIds: boolean
  private disposed = false

  private constructor(
    bundle: BundleModel,
    backend: BackendChoice,
    private readonly jsHeadsMaxWidth: number,
    /** Most rows in one model call (webgpu: every tensor must fit one storage binding); larger batches are split. */
    private readonly maxRows: number,
    recycle: FloatPool | undefined,
    chain: DenseChain | undefined,
    direct: NativeDense | WasmDense | undefined,
  ) {
    this.recycle = recycle
    this.manifest = bundle.manifest
    this.backend = backend
    this.model = bundle.model
    this.chain = chain
    this.direct = direct
    this.layout = bundle.layout
    this.heads = bundle.manifest.heads
    this.sumHeads = outputWidth(this.heads)
    this.idSpace = idSpace(this.heads)
    this.hasInvalidIds = this.idSpace > bundle.manifest.numLabels
  }

  /**
   * Wraps a loaded bundle; `backend` is the active tfjs backend (selectBackend's choice, or just its name where a
   * test or bench set it). `jsHeadsMaxWidth` (default JS_HEADS_MAX_WIDTH) picks the path; tests and benches set it
   * to compare the two. `maxBindingBytes` caps any one tensor (default: the webgpu device's storage binding on
   * webgpu, none elsewhere); weights over it are refused with a BundleError, batches whose tensors would exceed it
   * are split. `recycle` takes the feature buffers back (ModelEngine.predict). `denseChain: false` runs a plain stack of
   * Dense layers through LayersModel.execute too (dense-chain.ts; for comparisons).
   */
  static async create(
    bundle: BundleModel,
    backend: BackendChoice | string,
    opts: { jsHeadsMaxWidth?: number; maxBindingBytes?: number; recycle?: FloatPool; denseChain?: boolean } = {},
  ): Promise<Engine> {
    await tf.ready()
    const choice = typeof backend === 'string' ? { name: backend, gpu: backend === 'webgpu', tried: [{ name: backend, ok: true }] } : backend
    // On wasm and cpu the outputs already live in this process, so reading them is a copy; a native or GPU
    // backend (tensorflow, webgpu) keeps per-head top-k' on the device so only k' numbers per head cross.
    const inProcess = choice.name === 'wasm' || choice.name === 'cpu'
    const limit = opts.maxBindingBytes ?? (choice.name === 'webgpu' ? deviceBindingLimit() : undefined)
    let maxRows = Infinity
    if (limit !== undefined) {
      const weights = modelWeights(bundle.model)
      const big = oversizeWeights(weights, limit)
      if (big.length > 0) {
        const list = big.map((w) => `${w.name} [${w.shape.join(', ')}] ${w.dtype} = ${tensorBytes(w)} bytes`).join(', ')
        throw new BundleError(
          join(bundle.dir, bundle.manifest.model),
          `on ${choice.name}, one tensor may hold at most ${limit} bytes (a WebGPU storage binding), and ${list} ` +
            `${big.length === 1 ? 'is' : 'are'} larger: serve it with MHE_BACKEND=tensorflow or wasm, or as MHE heads (far smaller weights)`,
        )
      }
      maxRows = maxRowsPerCall(limit, bundle.manifest.featureDim, bundle.manifest.heads, weights)
    }
    const jsHeadsMaxWidth = opts.jsHeadsMaxWidth ?? (inProcess ? JS_HEADS_MAX_WIDTH : 0)
    const d = bundle.manifest.featureDim
    // A turn of this thread's event loop after each step that runs the model: on the engine thread, the versions
    // already serving answer their batches between the steps of a load, not after all of it (bench/README.md, session 11).
    const chain = bundle.model instanceof GraphModel || !(opts.denseChain ?? true) ? undefined : DenseChain.of(bundle.model, d)
    if (chain) await nextTurn()
    // Only where predictInJs runs and its rows are already what it reads: one [n, Σn_h] output.
    const width = outputWidth(bundle.manifest.heads)
    const direct = chain && width <= jsHeadsMaxWidth && bundle.layout === 'concat' && chain.outDim === width ? directDense(chain, d, choice) : undefined
    if (direct) await nextTurn()
    return new Engine(bundle, choice, jsHeadsMaxWidth, maxRows, opts.recycle, chain, direct)
  }

  /** ModelEngine.predict: the features' buffer goes to `recycle` once the batch's tensors are gone. */
  async predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
    try {
      return await this.predictBatch(features, n, topK)
    } finally {
      this.recycle?.reclaim(features)
    }
  }

  private async predictBatch(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
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
    if (n <= this.maxRows) return this.predictRows(features, n, topK, kMax)
    // Equal parts (not maxRows and a remainder): fewer distinct shapes for the backend to compile kernels for.
    const parts = Math.ceil(n / this.maxRows)
    const size = Math.ceil(n / parts)
    const results: Candidate[][] = []
    for (let from = 0; from < n; from += size) {
      const m = Math.min(size, n - from)
      const k = Array.from({ length: m }, (_, i) => topK[from + i]!)
      results.push(...(await this.predictRows(features.subarray(from * d, (from + m) * d), m, k, Math.max(...k))))
    }
    return results
  }

  /** One model call on n rows (n <= maxRows). */
  private async predictRows(features: Float32Array, n: number, topK: ArrayLike<number>, kMax: number): Promise<Candidate[][]> {
    const d = this.manifest.featureDim
    if (this.sumHeads <= this.jsHeadsMaxWidth) return this.predictInJs(features, n, topK, kMax)
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
        const merged = mergeTopK(lists, heads, this.manifest.numLabels, topK[i]!, kMax, this.idSpace)
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

  /** Narrow heads: one model call, one download of [n, Σn_h], then per head log-softmax, top-k' and merge in JS. */
  private async predictInJs(features: Float32Array, n: number, topK: ArrayLike<number>, kMax: number): Promise<Candidate[][]> {
    const rows = this.direct ? this.direct.run(features, n) : await this.outputRows(features, n)
    const heads = this.heads
    const numLabels = this.manifest.numLabels
    const probabilities = this.manifest.outputs === 'probabilities'
    const kPrimes = heads.map((nh) => Math.min(nh, kMax))
    const results = new Array<Candidate[]>(n)
    const H = heads.length
    const starts = new Int32Array(H)
    for (let h = 1; h < H; h++) starts[h] = starts[h - 1]! + heads[h - 1]!
    const top1 = kMax === 1 && !probabilities
    for (let i = 0; i < n; i++) {
      const base = i * this.sumHeads
      const best = top1 ? bestOfLogits(rows, base, heads, starts, numLabels) : undefined
      if (best !== undefined) {
        results[i] = [best]
        continue
      }
      const lists: HeadList[] = []
      for (let h = 0; h < H; h++) {
        const from = base + starts[h]!
        const to = from + heads[h]!
        // Logits: log-softmax is a shift, so select on the raw row and shift only the k' picked values.
        lists.push(
          probabilities
            ? topKOf(toLogProbs(rows.subarray(from, to), true), 0, to - from, kPrimes[h]!)
            : shift(topKOf(rows, from, to, kPrimes[h]!), logSumExp(rows, from, to)),
        )
      }
      results[i] = mergeTopK(lists, heads, numLabels, topK[i]!, kMax, this.idSpace) ?? exactTopK(
        heads.map((nh, h) => toLogProbs(rows.subarray(base + starts[h]!, base + starts[h]! + nh), probabilities)),
        heads,
        numLabels,
        topK[i]!,
      )
    }
    return results
  }

  /** The model's outputs [n, Σn_h] through tfjs. */
  private async outputRows(features: Float32Array, n: number): Promise<Float32Array> {
    const out = tf.tidy(() => {
      const x = tf.tensor2d(features, [n, this.manifest.featureDim], 'float32')
      // One [n, Σn_h] output is already the rows we want; separate head outputs are joined.
      if (this.layout === 'concat') return this.checked(this.run(x)[0]!, n, this.sumHeads, 'all heads')
      const perHead = this.headOutputs(x)
      return perHead.length === 1 ? perHead[0]! : tf.concat(perHead, 1)
    })
    try {
      return (await out.data()) as Float32Array
    } finally {
      out.dispose()
    }
  }

  /** Exact top-k from the full log-probability rows of the instances whose candidates were crowded out by ids >= C. */
  private async widen(rows: number[], topK: ArrayLike<number>, logProbs: tf.Tensor | undefined, results: Candidate[][]) {
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
    return this.headOutputs(x).map((f) =>
      this.manifest.outputs === 'probabilities' ? tf.log(tf.clipByValue(f, MIN_PROB, 1)) : tf.logSoftmax(f),
    ) as tf.Tensor2D[]
  }

  /** The model's raw float32 outputs per head [n, n_h] (logits or probabilities), shapes checked; call inside tf.tidy. */
  private headOutputs(x: tf.Tensor2D): tf.Tensor2D[] {
    const n = x.shape[0]
    const outs = this.run(x)
    let perHead: tf.Tensor[]
    if (this.layout === 'split') {
      perHead = outs
    } else {
      const only = outs[0]!
      perHead = this.heads.length === 1 ? [only] : tf.split(only, this.heads as number[], 1)
    }
    return perHead.map((t, h) => this.checked(t, n, this.heads[h]!, `head ${h}`))
  }

  /** The model's outputs for a batch; call inside tf.tidy. */
  private run(x: tf.Tensor2D): tf.Tensor[] {
    // LayersModel.execute, not predict: predict re-checks the input and cuts the batch into slices of 32, which
    // cost ~3x the model's own time on a small batch (bench/README.md, engine section). Both run in inference mode.
    if (this.chain) return [this.chain.run(x)]
    const m = this.model
    const out = m instanceof GraphModel ? m.execute(x) : m.execute(x, m.outputs.map((o) => o.name))
    return Array.isArray(out) ? out : [out]
  }

  /** Checks an output is [n, width] and makes it float32; call inside tf.tidy. */
  private checked(t: tf.Tensor, n: number, width: number, what: string): tf.Tensor2D {
    if (t.rank !== 2 || t.shape[0] !== n || t.shape[1] !== width) {
      throw new Error(`model output for ${what} has shape [${t.shape.join(', ')}], expected [${n}, ${width}]`)
    }
    return (t.dtype === 'float32' ? t : tf.cast(t, 'float32')) as tf.Tensor2D
  }

  /** Runs one batch of zeros so kernels and buffers exist before the first request. */
  async warmUp(batchSize = 1): Promise<void> {
    await this.predict(new Float32Array(batchSize * this.manifest.featureDim), batchSize, new Array<number>(batchSize).fill(1))
  }

  numTensors(): number {
    return tf.memory().numTensors
  }

  /** Bytes of the model's weights. */
  weightBytes(): number {
    return modelWeights(this.model).reduce((sum, w) => sum + tensorBytes(w), 0)
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.direct?.dispose()
    this.model.dispose()
  }
}

/** Resolves on the next turn of this thread's event loop, after the I/O and messages already there. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** The chain as kernel calls without tfjs: native where the backend choice has it on, else the wasm kernel's. */
function directDense(chain: DenseChain, featureDim: number, backend: BackendChoice): NativeDense | WasmDense | undefined {
  const addon = backend.nativeDense !== undefined ? denseAddon() : undefined
  let native: NativeDense | undefined
  try {
    native = addon !== undefined && 'addon' in addon ? NativeDense.of(chain, featureDim, addon.addon) : undefined
  } catch {
    // An addon that refuses the chain (a build of other exports, say) leaves it to the wasm kernel, not the load.
  }
  return native ?? WasmDense.of(chain, featureDim)
}

/** Name, shape and dtype of every weight tensor of a loaded model (LayersModel variables or GraphModel constants). */
function modelWeights(model: LayersModel | GraphModel): WeightInfo[] {
  if (model instanceof GraphModel) {
    return Object.entries(model.weights).flatMap(([name, ts]) => ts.map((t) => ({ name, shape: t.shape, dtype: t.dtype })))
  }
  return model.weights.map((w) => ({ name: w.name, shape: w.shape as number[], dtype: w.dtype }))
}

/** One head's log-probabilities (float32, as the backend path computes them) from its logits or probabilities. */
function toLogProbs(row: Float32Array, probabilities: boolean): Float32Array {
  const out = new Float32Array(row.length)
  if (probabilities) {
    for (let j = 0; j < row.length; j++) out[j] = Math.log(Math.min(Math.max(row[j]!, MIN_PROB), 1))
    return out
  }
  const lse = logSumExp(row, 0, row.length)
  for (let j = 0; j < row.length; j++) out[j] = row[j]! - lse
  return out
}

/** log Σ exp(v[from..to)), computed stably. Offsets instead of subarray views: no allocation per head. */
function logSumExp(v: Float32Array, from: number, to: number, max = maxOf(v, from, to)): number {
  let sum = 0
  for (let j = from; j < to; j++) sum += Math.exp(v[j]! - max)
  return max + Math.log(sum)
}

/**
 * The best label from logits (k = 1, the usual request): each head's argmax and its log-probability, composed; the
 * same numbers as topKOf + shift + mergeTopK, without a list per head (two typed arrays and an object each, per
 * instance). Undefined when the composed id is past C: the general merge then looks further.
 */
function bestOfLogits(rows: Float32Array, base: number, heads: readonly number[], starts: Int32Array, numLabels: number): Candidate | undefined {
  let id = 0
  let logScore = 0
  const headIds = new Array<number>(heads.length)
  for (let h = 0; h < heads.length; h++) {
    const from = base + starts[h]!
    const to = from + heads[h]!
    // The first of equal maxima, as topKOf (and tf.topk) pick it.
    let at = from
    let top = rows[from]!
    for (let j = from + 1; j < to; j++) {
      if (rows[j]! > top) {
        top = rows[j]!
        at = j
      }
    }
    const local = at - from
    id = id * heads[h]! + local
    // top is the head's max (NaN first, or any NaN, makes the sum NaN either way), so logSumExp need not look again.
    logScore += Math.fround(top - logSumExp(rows, from, to, top))
    headIds[h] = local
  }
  return id < numLabels ? { id, logScore, headIds } : undefined
}

/** The largest of v[from..to) that is not NaN; -Infinity when there is none. */
function maxOf(v: Float32Array, from: number, to: number): number {
  let max = -Infinity
  for (let j = from; j < to; j++) if (v[j]! > max) max = v[j]!
  return max
}

/** Turns selected logits into log-probabilities (in place, rounded to float32 like the backend path). */
function shift(list: HeadList, lse: number): HeadList {
  const v = list.logProbs as Float32Array
  for (let j = 0; j < v.length; j++) v[j] = v[j]! - lse
  return list
}

/** The k largest of v[from..to), best first, indices relative to `from`; ties keep the lower index first (as tf.topk). */
function topKOf(v: Float32Array, from: number, to: number, k: number): HeadList {
  const indices = new Int32Array(k)
  const logProbs = new Float32Array(k)
  let count = 0
  for (let j = 0; j < to - from; j++) {
    const x = v[from + j]!
    if (count === k && !(x > logProbs[k - 1]!)) continue
    let p = count < k ? count++ : k - 1
    while (p > 0 && logProbs[p - 1]! < x) {
      logProbs[p] = logProbs[p - 1]!
      indices[p] = indices[p - 1]!
      p--
    }
    logProbs[p] = x
    indices[p] = j
  }
  return { indices, logProbs }
}
