// A layers model that is only Dense layers, one after another (the MHE bundles our tools write: heads on the features,
// or one hidden layer and the heads), run as fused matMuls instead of through LayersModel.execute. For a batch of one
// row, execute's symbolic machinery (feed dicts, name scopes, layer calls) is a longer code path than the arithmetic,
// and it runs cold: between one-request batches the load generator and the event loop evict it from the caches.

import * as tf from '@tensorflow/tfjs-core'
import type { LayersModel } from '@tensorflow/tfjs-layers'

type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid'
const FUSED: ReadonlySet<string> = new Set<Activation>(['linear', 'relu', 'relu6', 'elu', 'sigmoid'])

export interface DenseStep {
  kernel: tf.Tensor2D
  bias: tf.Tensor1D | undefined
  activation: Activation
}

/** Minimal view of a tfjs-layers layer (the package's types do not expose inbound nodes). */
interface LayerView {
  getClassName(): string
  getConfig(): { activation?: unknown }
  getWeights(): tf.Tensor[]
  inboundNodes: { inboundLayers: LayerView[] }[]
}

export class DenseChain {
  private constructor(readonly steps: readonly DenseStep[]) {}

  /**
   * The model's Dense steps, or undefined when it is anything else: another layer type, a branch, several outputs, an
   * activation that fused matMul does not apply. Two rows of noise must give the model's own outputs (to 1e-5).
   */
  static of(model: LayersModel, featureDim: number): DenseChain | undefined {
    if (model.outputs.length !== 1) return undefined
    const layers = model.layers as unknown as LayerView[]
    const steps: DenseStep[] = []
    let previous: LayerView | undefined
    for (const layer of layers) {
      const name = layer.getClassName()
      const from = layer.inboundNodes[0]?.inboundLayers ?? []
      if (name === 'InputLayer' && previous === undefined) {
        previous = layer
        continue
      }
      if (name !== 'Dense' || layer.inboundNodes.length !== 1 || from.length > 1) return undefined
      if (previous !== undefined && from[0] !== previous) return undefined
      const { activation } = layer.getConfig()
      if (typeof activation !== 'string' || !FUSED.has(activation)) return undefined
      const [kernel, bias] = layer.getWeights()
      if (kernel?.rank !== 2 || (bias !== undefined && bias.rank !== 1)) return undefined
      steps.push({ kernel: kernel as tf.Tensor2D, bias: bias as tf.Tensor1D | undefined, activation: activation as Activation })
      previous = layer
    }
    if (steps.length === 0) return undefined
    const chain = new DenseChain(steps)
    const [error, scale] = tf.tidy(() => {
      const probe = tf.randomNormal([2, featureDim], 0, 1, 'float32', 7) as tf.Tensor2D
      const want = model.execute(probe, model.outputs[0]!.name) as tf.Tensor
      const got = chain.run(probe)
      if (!tf.util.arraysEqual(want.shape, got.shape)) return [Infinity, 1]
      return [tf.max(tf.abs(tf.sub(want, got))).dataSync()[0]!, tf.max(tf.abs(want)).dataSync()[0]!]
    }) as unknown as [number, number]
    return error <= 1e-5 * Math.max(1, scale) ? chain : undefined
  }

  /** Width of the model's output. */
  get outDim(): number {
    return this.steps[this.steps.length - 1]!.kernel.shape[1]
  }

  /**
   * Whether `run` (the chain on another kernel: wasm-dense.ts, native-dense.ts) gives the chain's outputs on `rows`
   * rows of noise, to 1e-6; both NaN (weights that overflow do so on both) and the same infinity agree.
   */
  agrees(featureDim: number, rows: number, run: (x: Float32Array, n: number) => Float32Array): boolean {
    const probe = tf.randomNormal([rows, featureDim], 0, 1, 'float32', 7) as tf.Tensor2D
    try {
      const got = run(probe.dataSync() as Float32Array, rows)
      const wanted = tf.tidy(() => this.run(probe).dataSync())
      if (got.length !== wanted.length) return false
      for (let i = 0; i < got.length; i++) {
        const a = got[i]!
        const b = wanted[i]!
        if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)))) return false
      }
      return true
    } finally {
      probe.dispose()
    }
  }

  /** The model's output for x [n, d]; call inside tf.tidy. */
  run(x: tf.Tensor2D): tf.Tensor2D {
    let h = x
    for (const s of this.steps) h = tf.fused.matMul({ a: h, b: s.kernel, bias: s.bias, activation: s.activation }) as tf.Tensor2D
    return h
  }
}
