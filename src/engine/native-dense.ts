// A DenseChain run by native/dense.cc, the kernel built at install (native/build.mjs), on the in-process backends
// (wasm, cpu). It does the wasm kernel's arithmetic in the same order, so its outputs are that kernel's bit for bit,
// with the machine's widest vectors (AVX-512 or AVX2) instead of wasm's 4 lanes: ~2.8x the wasm kernel on a batch of
// 16 rows of the 10^6-label bench bundle, ~1.7x on one row (bench/README.md, session 11). Used only when the build is
// there, of this version, and gives the chain's own outputs on two rows of noise; otherwise WasmDense or tfjs runs it.

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import * as tf from '@tensorflow/tfjs-core'
import type { DenseChain, DenseStep } from './dense-chain.js'

/** native/dense.cc's DENSE_VERSION: the exports this file was written against. */
const VERSION = 1

/** The addon's exports. A chain is an opaque handle; `free` releases its memory at once. */
export interface DenseAddon {
  version: number
  /** The vectors it runs on: 'avx512f', 'avx2' or '128-bit'. */
  vectors: string
  create(layers: [kernel: Float32Array, bias: Float32Array | null, inDim: number, outDim: number, lo: number, hi: number][]): object
  run(chain: object, x: Float32Array, n: number, out: Float32Array): void
  free(chain: object): void
}

/** An activation as the clamp the kernel applies (the ones fused matMul applies that way); others are not native. */
const CLAMP: Partial<Record<DenseStep['activation'], [number, number]>> = { linear: [-Infinity, Infinity], relu: [0, Infinity], relu6: [0, 6] }

/** Where the build lands, seen from src/engine (tsx, tests) and from dist/src/engine (npm start). */
const CANDIDATES = ['../../native/build/dense.node', '../../../native/build/dense.node'].map((p) => new URL(p, import.meta.url).pathname)

let loaded: { addon: DenseAddon } | { reason: string } | undefined

/** The addon, or why there is none (not built, another version, failed to load); tried once per thread. */
export function denseAddon(paths: readonly string[] = CANDIDATES): { addon: DenseAddon } | { reason: string } {
  if (paths === CANDIDATES && loaded !== undefined) return loaded
  const found = loadFrom(paths)
  if (paths === CANDIDATES) loaded = found
  return found
}

function loadFrom(paths: readonly string[]): { addon: DenseAddon } | { reason: string } {
  const path = paths.find((p) => existsSync(p))
  if (path === undefined) return { reason: 'native/build/dense.node is not built (npm run build:native needs a C++ compiler)' }
  try {
    const addon = createRequire(import.meta.url)(path) as DenseAddon
    if (addon.version !== VERSION) return { reason: `${path} is version ${addon.version}, not ${VERSION}: rebuild it (npm run build:native)` }
    return { addon }
  } catch (err) {
    return { reason: `${path} failed to load: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}` }
  }
}

export class NativeDense {
  private disposed = false

  private constructor(
    private readonly addon: DenseAddon,
    private readonly handle: object,
    private readonly outDim: number,
  ) {}

  /** The chain on the addon, or undefined when an activation is not a clamp or its outputs are not the chain's. */
  static of(chain: DenseChain, featureDim: number, addon: DenseAddon): NativeDense | undefined {
    const layers: Parameters<DenseAddon['create']>[0] = []
    for (const s of chain.steps) {
      const clamp = CLAMP[s.activation]
      if (clamp === undefined || s.kernel.dtype !== 'float32') return undefined
      const [inDim, outDim] = s.kernel.shape
      layers.push([s.kernel.dataSync() as Float32Array, s.bias ? (s.bias.dataSync() as Float32Array) : null, inDim, outDim, ...clamp])
    }
    const native = new NativeDense(addon, addon.create(layers), chain.outDim)
    const probe = tf.randomNormal([2, featureDim], 0, 1, 'float32', 7) as tf.Tensor2D
    const got = native.run(probe.dataSync() as Float32Array, 2)
    const want = tf.tidy(() => chain.run(probe))
    const wanted = want.dataSync()
    tf.dispose([probe, want])
    // DenseChain's tolerance: the cpu backend sums in another order; on wasm they agree bit for bit.
    let same = got.length === wanted.length
    for (let i = 0; i < got.length && same; i++) same = agree(got[i]!, wanted[i]!)
    if (same) return native
    native.dispose()
    return undefined
  }

  /** The chain's outputs [n, outDim] for n rows of features, as a fresh array. */
  run(features: Float32Array, n: number): Float32Array {
    if (this.disposed) throw new Error('NativeDense is disposed')
    const out = new Float32Array(n * this.outDim)
    this.addon.run(this.handle, features, n, out)
    return out
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.addon.free(this.handle)
  }
}

/** Equal to the tolerance, or both the same infinity, or both NaN (weights that overflow do so on both). */
function agree(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b))
}
