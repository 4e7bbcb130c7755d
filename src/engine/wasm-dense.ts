// A DenseChain on the wasm backend, run by calling the backend's fused-matMul kernel directly on buffers kept from
// batch to batch: per batch, one copy of the features in, one kernel call per layer, one copy of the outputs out.
// Through tfjs the same kernel costs as much again in bookkeeping (a tensor made, tracked and disposed per step,
// engine scopes, the kernel looked up, the data read back): ~45 vs ~21 µs for one row of the 10^6-label bench
// bundle, in a hot loop; more for a lone request, whose path runs cold (bench/README.md, session 7).
// It reaches into tfjs-backend-wasm (its emscripten module and tensor-id map), so it is used only when those look
// as expected and it gives the chain's own outputs on two rows of noise; otherwise the chain runs through tfjs.

import * as tf from '@tensorflow/tfjs-core'
import type { DenseChain, DenseStep } from './dense-chain.js'

/** tfjs-backend-wasm's FusableActivation (cc/fusable_activations.h). */
const ACTIVATION: Record<DenseStep['activation'], number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 5, elu: 6 }

/** The kernel's export: shapes are pointers to int32s in the wasm heap, booleans 0 or 1. */
type FusedMatMul = (
  aId: number, aShape: number, aRank: number, bId: number, bShape: number, bRank: number,
  transposeA: number, transposeB: number, activation: number, biasId: number, preluId: number, leakyAlpha: number, outId: number,
) => void

/** The parts of tfjs-backend-wasm's BackendWasm used here: its emscripten module (exports, heap) and tensor ids. */
export interface WasmBackendView {
  wasm: { __FusedMatMul: FusedMatMul; _malloc(bytes: number): number; _free(pointer: number): void; HEAPF32: Float32Array; HEAP32: Int32Array }
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined }
}

/** Bytes of one layer's two shapes in the heap: [1, n, inDim] (the rows) and [1, inDim, outDim] (the kernel). */
const SHAPE_BYTES = 2 * 3 * 4

/** A tensor held as a buffer: its id and byte offset in the wasm heap. */
interface Slot {
  tensor: tf.Tensor
  id: number
  offset: number
}

interface Layer {
  kernelId: number
  biasId: number
  activation: number
  inDim: number
  outDim: number
}

/** The active backend's internals used here and in native-dense.ts, when it is wasm and has them as expected. */
export function wasmBackendView(): WasmBackendView | undefined {
  if (tf.getBackend() !== 'wasm') return undefined
  const backend = tf.backend() as unknown as Partial<WasmBackendView>
  const wasm = backend.wasm
  if (typeof wasm?.__FusedMatMul !== 'function' || typeof wasm._malloc !== 'function' || typeof wasm._free !== 'function') return undefined
  if (typeof backend.dataIdMap?.get !== 'function' || !(wasm.HEAPF32 instanceof Float32Array)) return undefined
  return backend as WasmBackendView
}

export class WasmDense {
  private capacity = 0
  private input: Slot | undefined
  private outputs: Slot[] = []
  private disposed = false
  /** The layers' shapes in the wasm heap (SHAPE_BYTES each), and the row count they were last written for. */
  private readonly shapes: number
  private shapesRows = -1

  private constructor(
    private readonly backend: WasmBackendView,
    private readonly layers: Layer[],
  ) {
    this.shapes = backend.wasm._malloc(SHAPE_BYTES * layers.length)
    if (this.shapes === 0) throw new Error('wasm backend: no memory for the kernel shapes')
    layers.forEach((l, i) => backend.wasm.HEAP32.set([1, l.inDim, l.outDim], (this.shapes + i * SHAPE_BYTES + 12) >> 2))
  }

  /** The chain as direct kernel calls, or undefined when the wasm backend is not active or not as expected. */
  static of(chain: DenseChain, featureDim: number): WasmDense | undefined {
    const view = wasmBackendView()
    if (view === undefined) return undefined
    const idOf = (t: tf.Tensor | undefined): number | undefined => (t === undefined ? 0 : view.dataIdMap.get(t.dataId)?.id)
    const layers: Layer[] = []
    let inDim = featureDim
    for (const s of chain.steps) {
      const [rows, outDim] = s.kernel.shape
      const kernelId = idOf(s.kernel)
      const biasId = idOf(s.bias)
      if (rows !== inDim || kernelId === undefined || biasId === undefined || s.kernel.dtype !== 'float32') return undefined
      layers.push({ kernelId, biasId, activation: ACTIVATION[s.activation], inDim, outDim })
      inDim = outDim
    }
    let direct: WasmDense | undefined
    try {
      direct = new WasmDense(view, layers)
      const kernel = direct
      if (chain.agrees(featureDim, 2, (x, n) => kernel.run(x, n))) return direct
    } catch {
      // Not the backend this was written against: the chain runs through tfjs.
    }
    direct?.dispose()
    return undefined
  }

  /** The chain's outputs [n, outDim] for n rows of features, as a fresh array. */
  run(features: Float32Array, n: number): Float32Array {
    if (this.disposed) throw new Error('WasmDense is disposed')
    if (n > this.capacity) this.grow(n)
    const first = this.layers[0]!
    if (features.length !== n * first.inDim) throw new Error(`features has ${features.length} values, expected ${n} * ${first.inDim}`)
    // The heap's views are read each time: the wasm memory may have grown (and been replaced) since the last batch.
    const wasm = this.backend.wasm
    if (n !== this.shapesRows) {
      this.layers.forEach((l, i) => wasm.HEAP32.set([1, n, l.inDim], (this.shapes + i * SHAPE_BYTES) >> 2))
      this.shapesRows = n
    }
    wasm.HEAPF32.set(features, this.input!.offset >> 2)
    let from = this.input!
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!
      const to = this.outputs[i]!
      const shapes = this.shapes + i * SHAPE_BYTES
      wasm.__FusedMatMul(from.id, shapes, 3, l.kernelId, shapes + 12, 3, 0, 0, l.activation, l.biasId, 0, 0, to.id)
      from = to
    }
    const start = from.offset >> 2
    return wasm.HEAPF32.slice(start, start + n * this.layers[this.layers.length - 1]!.outDim)
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.release()
    this.backend.wasm._free(this.shapes)
  }

  /** Buffers for at least n rows (doubling, so a few sizes cover every batch size). */
  private grow(n: number): void {
    const capacity = Math.max(n, 2 * this.capacity)
    this.release()
    this.capacity = capacity
    this.input = this.slot(this.capacity * this.layers[0]!.inDim)
    this.outputs = this.layers.map((l) => this.slot(this.capacity * l.outDim))
  }

  private slot(size: number): Slot {
    const tensor = tf.zeros([size], 'float32')
    const data = this.backend.dataIdMap.get(tensor.dataId)
    if (data === undefined) {
      tensor.dispose()
      throw new Error('wasm backend: no data for a new tensor')
    }
    return { tensor, id: data.id, offset: data.memoryOffset }
  }

  private release(): void {
    tf.dispose([...(this.input ? [this.input.tensor] : []), ...this.outputs.map((s) => s.tensor)])
    this.input = undefined
    this.outputs = []
    this.capacity = 0
  }
}
