// A DenseChain run by native/dense.cc, the kernel built at install (native/build.mjs), on the wasm backend: on the
// weights where that backend keeps them (its heap; no copy), with the wasm kernel's arithmetic in the same order, so
// its outputs are that kernel's bit for bit, on the machine's widest vectors (AVX-512 or AVX2) instead of wasm's 4
// lanes: ~2.3x the wasm kernel on a batch of 16 rows of the 10^6-label bench bundle, ~1.2-1.4x on one row (bench/README.md,
// session 11). Used only when the build is there, of this version, and gives the chain's own outputs on five rows of
// noise; otherwise WasmDense or tfjs runs the chain.

import * as tf from '@tensorflow/tfjs-core'
import type { DenseChain, DenseStep } from './dense-chain.js'
import { wasmBackendView, type WasmBackendView } from './wasm-dense.js'
import { nativeAddon, type Found } from '../native-addon.js'

/** native/dense.cc's DENSE_VERSION: the exports this file was written against. */
const VERSION = 2

/**
 * The addon's exports. A chain is an opaque handle: where each layer's kernel and bias are in a heap of floats
 * (offsets in floats; bias -1 for none), passed to every run (the wasm heap may have grown and moved since the last);
 * `free` releases its scratch memory at once and makes it refuse to run.
 */
export interface DenseAddon {
  version: number
  /** The vectors it runs on: 'avx512f', 'avx2' or '128-bit'. */
  vectors: string
  create(layers: [kernelAt: number, biasAt: number, inDim: number, outDim: number, lo: number, hi: number][]): object
  run(chain: object, heap: Float32Array, x: Float32Array, n: number, out: Float32Array): void
  free(chain: object): void
  /** The paths this CPU runs ('avx512f', 'avx2', '128-bit'), widest first; useVectors switches to one (tests). */
  vectorsSupported(): string[]
  useVectors(name: string): boolean
}

/** An activation as the clamp the kernel applies (the ones fused matMul applies that way); others are not native. */
const CLAMP: Partial<Record<DenseStep['activation'], [number, number]>> = { linear: [-Infinity, Infinity], relu: [0, Infinity], relu6: [0, 6] }

/** Rows of noise a new NativeDense must answer as the chain does: a block of 4 (how batches run) and a row alone. */
const PROBE_ROWS = 5

/** The addon, or why there is none (not built, another version, failed to load); tried once per thread. */
export function denseAddon(paths?: readonly string[]): Found<DenseAddon> {
  return nativeAddon<DenseAddon>('dense', VERSION, paths)
}

export class NativeDense {
  private disposed = false

  private constructor(
    private readonly addon: DenseAddon,
    private readonly backend: WasmBackendView,
    private readonly handle: object,
    private readonly outDim: number,
  ) {}

  /**
   * The chain on the addon, or undefined off the wasm backend, for an activation that is not a clamp, or when its
   * outputs are not the chain's. Its weights stay the chain's tensors: dispose this before them.
   */
  static of(chain: DenseChain, featureDim: number, addon: DenseAddon): NativeDense | undefined {
    const backend = wasmBackendView()
    if (backend === undefined) return undefined
    const at = (t: tf.Tensor): number | undefined => {
      const offset = backend.dataIdMap.get(t.dataId)?.memoryOffset
      return offset !== undefined && offset % 4 === 0 ? offset / 4 : undefined
    }
    const layers: Parameters<DenseAddon['create']>[0] = []
    for (const s of chain.steps) {
      const clamp = CLAMP[s.activation]
      const kernelAt = at(s.kernel)
      const biasAt = s.bias === undefined ? -1 : at(s.bias)
      const biasFits = s.bias === undefined || (s.bias.dtype === 'float32' && s.bias.shape[0] === s.kernel.shape[1])
      if (clamp === undefined || s.kernel.dtype !== 'float32' || kernelAt === undefined || biasAt === undefined || !biasFits) return undefined
      layers.push([kernelAt, biasAt, s.kernel.shape[0], s.kernel.shape[1], ...clamp])
    }
    const native = new NativeDense(addon, backend, addon.create(layers), chain.outDim)
    // Bit for bit where the wasm kernel sums as this file was written against (a test checks); to 1e-6 should a
    // later tfjs sum in another order.
    let same = false
    try {
      same = chain.agrees(featureDim, PROBE_ROWS, (x, n) => native.run(x, n))
    } finally {
      if (!same) native.dispose()
    }
    return same ? native : undefined
  }

  /** The chain's outputs [n, outDim] for n rows of features, as a fresh array. */
  run(features: Float32Array, n: number): Float32Array {
    if (this.disposed) throw new Error('NativeDense is disposed')
    const out = new Float32Array(n * this.outDim)
    // The heap's view is read each time: the wasm memory may have grown (and been replaced) since the last batch.
    this.addon.run(this.handle, this.backend.wasm.HEAPF32, features, n, out)
    return out
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.addon.free(this.handle)
  }
}
