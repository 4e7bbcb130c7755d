// Small batches on the event loop, the rest on the engine thread. A batch of one instance costs ~45 µs on wasm
// (10^6-label bench bundle), while the round trip to the engine thread costs two thread wake-ups (a sleeping thread on
// a sleeping core: 100-200 µs on the 2-core VM of bench/README.md), so one request alone is answered faster here.
// Large batches keep the engine thread, where they compute while the event loop reads the next requests. The batcher
// runs one batch at a time, so a small batch never waits for a large one. Costs a second copy of the weights (only for
// bundles up to config.ts INLINE_MAX_WEIGHT_BYTES) and tfjs on the main thread.

import type { BackendChoice } from './backend.js'
import type { Candidate } from '../mhe/codec.js'
import type { FloatPool } from './float-pool.js'
import type { ModelEngine } from './model-engine.js'

export class SplitEngine implements ModelEngine {
  constructor(
    /** On the engine thread: batches of more than `inlineBatch` instances, and the engine's failure. */
    readonly thread: ModelEngine,
    /** The same model on this thread. */
    private readonly local: ModelEngine,
    private readonly inlineBatch: number,
  ) {}

  get manifest() {
    return this.thread.manifest
  }

  get backend(): BackendChoice {
    return this.thread.backend
  }

  get recycle(): FloatPool | undefined {
    return this.thread.recycle
  }

  set recycle(pool: FloatPool | undefined) {
    this.thread.recycle = pool
    this.local.recycle = pool
  }

  get onFailure(): ((err: Error) => void) | undefined {
    return this.thread.onFailure
  }

  set onFailure(f: ((err: Error) => void) | undefined) {
    this.thread.onFailure = f
  }

  predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
    return (n <= this.inlineBatch ? this.local : this.thread).predict(features, n, topK)
  }

  weightBytes(): number {
    return this.thread.weightBytes()
  }

  /** Both threads' live tensors. */
  numTensors(): number {
    return this.thread.numTensors() + this.local.numTensors()
  }

  async dispose(): Promise<void> {
    await this.local.dispose()
    await this.thread.dispose()
  }
}
