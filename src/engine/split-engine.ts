// Small batches on the event loop, the rest on the engine thread. A batch of one instance costs ~45 µs on wasm
// (10^6-label bench bundle), while the round trip to the engine thread costs two thread wake-ups (a sleeping thread on
// a sleeping core: 100-200 µs on the 2-core VM of bench/README.md), so one request alone is answered faster here.
// Large batches keep the engine thread, where they compute while the event loop reads the next requests. The batcher
// runs one batch at a time, so a small batch never waits for a large one. Costs a second copy of the weights (only for
// bundles up to config.ts INLINE_MAX_WEIGHT_BYTES) and tfjs on the main thread.
//
// Making that copy takes the event loop ~6 ms (read, build, warm up). A version loaded while requests are answered
// makes it only once traffic is light (LIGHT_TRAFFIC_BATCHES small batches in a row): with more concurrent requests
// than inlineBatch, batches are larger and never use it, and such a hot swap no longer stalls the requests being
// answered (bench/README.md, session 10); with fewer, the copy is made right after the swap, as before. A copy is used
// only once it answers as the engine thread does, so model files changed on disk since the load cannot give answers
// that depend on the batch size.

import type { BackendChoice } from './backend.js'
import type { Candidate } from '../mhe/codec.js'
import type { FloatPool } from './float-pool.js'
import type { ModelEngine } from './model-engine.js'
import type { Log } from '../log.js'
import { firstLine } from '../bundle/files.js'

/** Small batches in a row that make traffic light enough to build the copy for (a single request at a time does). */
export const LIGHT_TRAFFIC_BATCHES = 8

/** Rows and labels each compared when a copy is checked against the engine thread. */
const CHECK_ROWS = 2
const CHECK_K = 5

export class SplitEngine implements ModelEngine {
  /** The same model on this thread, once made and checked. */
  private local: ModelEngine | undefined
  private building: Promise<void> | undefined
  private smallInARow = 0
  private disposed = false

  private constructor(
    /** On the engine thread: batches of more than `inlineBatch` instances (all of them until the copy exists). */
    readonly thread: ModelEngine,
    private readonly makeLocal: () => Promise<ModelEngine>,
    private readonly inlineBatch: number,
    private readonly log: Log,
  ) {}

  /** With the copy made before it serves (nothing else is being served: the build stalls no one). Throws if it cannot. */
  static async now(thread: ModelEngine, makeLocal: () => Promise<ModelEngine>, inlineBatch: number, log: Log): Promise<SplitEngine> {
    const engine = new SplitEngine(thread, makeLocal, inlineBatch, log)
    await engine.build()
    return engine
  }

  /** With the copy made once traffic is light; until then, and if it cannot be made, every batch runs on the thread. */
  static whenLight(thread: ModelEngine, makeLocal: () => Promise<ModelEngine>, inlineBatch: number, log: Log): SplitEngine {
    return new SplitEngine(thread, makeLocal, inlineBatch, log)
  }

  /** Whether small batches run on this thread yet. */
  get inline(): boolean {
    return this.local !== undefined
  }

  /** Settles once a copy being made is in use or given up (at once when none is being made). */
  async copied(): Promise<void> {
    await this.building
  }

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
    if (this.local) this.local.recycle = pool
  }

  get onFailure(): ((err: Error) => void) | undefined {
    return this.thread.onFailure
  }

  set onFailure(f: ((err: Error) => void) | undefined) {
    this.thread.onFailure = f
  }

  predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
    if (n > this.inlineBatch) {
      this.smallInARow = 0
      return this.thread.predict(features, n, topK)
    }
    if (this.local) return this.local.predict(features, n, topK)
    if (++this.smallInARow >= LIGHT_TRAFFIC_BATCHES && this.building === undefined && !this.disposed) {
      this.building = this.build().catch((err: unknown) => {
        this.log.warn({ reason: firstLine(err) }, 'no copy of the model on the event loop; small batches run on the engine thread too')
      })
    }
    return this.thread.predict(features, n, topK)
  }

  weightBytes(): number {
    return this.thread.weightBytes()
  }

  /** Both threads' live tensors. */
  numTensors(): number {
    return this.thread.numTensors() + (this.local?.numTensors() ?? 0)
  }

  async dispose(): Promise<void> {
    this.disposed = true
    await this.building
    await this.local?.dispose()
    this.local = undefined
    await this.thread.dispose()
  }

  private async build(): Promise<void> {
    const local = await this.makeLocal()
    try {
      await sameAnswers(local, this.thread)
    } catch (err) {
      await local.dispose()
      throw err
    }
    if (this.disposed) return local.dispose()
    local.recycle = this.thread.recycle
    this.local = local
  }
}

/** Throws unless both engines give the same top labels and scores for the same rows. */
async function sameAnswers(local: ModelEngine, thread: ModelEngine): Promise<void> {
  const d = thread.manifest.featureDim
  // Each engine takes its features over (ModelEngine.predict): one array each.
  const rows = (): Float32Array => Float32Array.from({ length: CHECK_ROWS * d }, (_, i) => Math.sin(1 + i * 0.7) * 2)
  const topK = new Array<number>(CHECK_ROWS).fill(Math.min(CHECK_K, thread.manifest.numLabels))
  const [a, b] = await Promise.all([local.predict(rows(), CHECK_ROWS, topK), thread.predict(rows(), CHECK_ROWS, topK)])
  // NaN on both sides agrees too: a model whose outputs overflow on these rows still serves (such answers are refused).
  const close = (a: number, b: number): boolean => Object.is(a, b) || Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b))
  const same = (x: Candidate, y: Candidate | undefined): boolean => y !== undefined && x.id === y.id && close(x.logScore, y.logScore)
  const agree = a.length === b.length && a.every((row, i) => row.length === b[i]!.length && row.every((c, j) => same(c, b[i]![j])))
  if (!agree) throw new Error('the copy of the model on the event loop does not answer as the engine thread does (were its files changed since the load?)')
}
