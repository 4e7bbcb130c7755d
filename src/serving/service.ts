// The prediction service behind the HTTP layer: reads the bundle's labels, starts the engine (on its own thread by
// default, MHE_ENGINE_THREAD) and feeds it through the dynamic batcher. Knows nothing of HTTP.

import type { Config } from '../config.js'
import type { BackendChoice } from '../engine/backend.js'
import type { Manifest } from '../bundle/manifest.js'
import { readBundleFiles, readLabels } from '../bundle/files.js'
import { startEngine, type ModelEngine } from '../engine/model-engine.js'
import type { LabelStore } from '../bundle/labels.js'
import { Batcher, type BatcherHooks } from './batcher.js'
import type { Candidate } from '../mhe/codec.js'
import { FloatPool } from '../engine/float-pool.js'

/** One instance on its way through the batcher: its feature vector and how many labels it wants. */
export interface Instance {
  features: Float32Array
  k: number
}

/** draining: not ready but serving; closing: no new connections, open ones answered then closed; failed: the engine died. */
export type ServiceState = 'starting' | 'ready' | 'draining' | 'closing' | 'failed'

export interface ServiceLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** Upper bound on the memory kept in recycled one-instance feature buffers. */
const INSTANCE_POOL_BYTES = 8 * 1024 * 1024

export class Service {
  state: ServiceState = 'starting'

  private constructor(
    readonly engine: ModelEngine,
    readonly labels: LabelStore,
    readonly batcher: Batcher<Instance, Candidate[]>,
    readonly backend: BackendChoice,
    /** Feature buffers of one instance (featureDim floats), recycled once their batch has copied them. */
    readonly instanceBuffers: FloatPool,
  ) {}

  get manifest(): Manifest {
    return this.engine.manifest
  }

  static async create(config: Config, log: ServiceLog, hooks?: BatcherHooks): Promise<Service> {
    const files = await readBundleFiles(config.modelDir)
    const labels = await readLabels(files)
    const d = files.manifest.featureDim
    const instanceBuffers = new FloatPool(d, Math.max(16, Math.floor(INSTANCE_POOL_BYTES / (4 * d))))
    const batchBuffers = new FloatPool(config.maxBatch * d, 2)
    const engine = await startEngine({ files, backend: config.backend, thread: config.engineThread, log, recycle: batchBuffers })
    const runBatch = async (items: Instance[]): Promise<Candidate[][]> => {
      const n = items.length
      const buffer = batchBuffers.take()
      const topK = new Int32Array(n)
      for (let i = 0; i < n; i++) {
        const item = items[i]!
        buffer.set(item.features, i * d)
        instanceBuffers.give(item.features)
        topK[i] = item.k
      }
      // The engine takes the buffer over and hands it back to batchBuffers when done.
      return engine.predict(buffer.subarray(0, n * d), n, topK)
    }
    const batcher = new Batcher(runBatch, {
      maxBatch: config.maxBatch,
      maxDelayMs: config.maxDelayMs,
      maxQueue: config.maxQueue,
      hooks,
    })
    const service = new Service(engine, labels, batcher, engine.backend, instanceBuffers)
    // Nothing can be predicted any more: fail readiness and liveness so the orchestrator replaces the process.
    engine.onFailure = () => {
      service.state = 'failed'
    }
    service.state = 'ready'
    const m = files.manifest
    log.info(
      { model: m.name, version: m.version, heads: m.heads, numLabels: m.numLabels, featureDim: m.featureDim, backend: engine.backend.name, engineThread: config.engineThread },
      'model loaded and warmed up',
    )
    return service
  }

  /** Stops taking work, answers everything queued or running, then frees the model. */
  async close(): Promise<void> {
    if (this.state !== 'failed') this.state = 'draining'
    this.batcher.close()
    await this.batcher.drain()
    await this.engine.dispose()
  }
}
