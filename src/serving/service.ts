// The prediction service behind the HTTP layer: reads the bundle's labels, starts the engine (on its own thread by
// default, MHE_ENGINE_THREAD) and feeds it through the dynamic batcher. Knows nothing of HTTP.

import { batchingFor, type Batching, type Config } from '../config.js'
import type { BackendChoice } from '../engine/backend.js'
import type { Manifest } from '../bundle/manifest.js'
import { readBundleFiles, readLabels, type BundleFiles } from '../bundle/files.js'
import { EngineThread } from '../engine/thread-host.js'
import type { LabelStore } from '../bundle/labels.js'
import { Batcher, type BatcherHooks } from './batcher.js'
import type { Candidate } from '../mhe/codec.js'
import { FloatPool } from '../engine/float-pool.js'

/** One instance on its way through the batcher: its feature vector and how many labels it wants. */
export interface Instance {
  features: Float32Array
  k: number
}

/** What the batcher needs of an engine: Engine in this thread, or EngineThread in a worker thread. */
export interface Predictor {
  readonly manifest: Manifest
  predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]>
  numTensors(): number
  dispose(): void | Promise<void>
}

/** draining: not ready but serving; closing: no new connections, open ones answered then closed; failed: the engine died. */
export type ServiceState = 'starting' | 'ready' | 'draining' | 'closing' | 'failed'

export interface ServiceLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** The engine on this thread: tfjs is loaded only here, so a main thread that hands the model to a worker never loads it. */
async function startInline(config: Config, files: BundleFiles, log: ServiceLog): Promise<{ engine: Predictor; backend: BackendChoice }> {
  const [{ selectBackend }, { loadModel }, { Engine }] = await Promise.all([import('../engine/backend.js'), import('../engine/model-load.js'), import('../engine/engine.js')])
  const backend = await selectBackend(config.backend, log)
  const engine = await Engine.create(await loadModel(files), backend.name)
  await engine.warmUp()
  return { engine, backend }
}

/** Upper bound on the memory kept in recycled one-instance feature buffers. */
const INSTANCE_POOL_BYTES = 8 * 1024 * 1024

export class Service {
  state: ServiceState = 'starting'

  private constructor(
    readonly engine: Predictor,
    readonly labels: LabelStore,
    readonly batcher: Batcher<Instance, Candidate[]>,
    readonly backend: BackendChoice,
    /** maxBatch and maxDelayMs as resolved for the backend (config.ts batchingFor). */
    readonly batching: Batching,
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
    let engine: Predictor
    let backend: BackendChoice
    if (config.engineThread) {
      const thread = await EngineThread.start({ modelDir: files.dir, backend: config.backend, manifest: files.manifest, log })
      engine = thread
      backend = thread.backendChoice
    } else {
      ;({ engine, backend } = await startInline(config, files, log))
    }
    // The batch size depends on the backend (a GPU wants larger batches), known only now.
    const batching = batchingFor(config, backend.gpu)
    const batchBuffers = new FloatPool(batching.maxBatch * d, 2)
    if (engine instanceof EngineThread) engine.recycle = batchBuffers
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
      // The engine thread takes the buffer over and hands it back to batchBuffers with its answer.
      const results = await engine.predict(buffer.subarray(0, n * d), n, topK)
      if (!config.engineThread) batchBuffers.give(buffer)
      return results
    }
    const batcher = new Batcher(runBatch, { ...batching, maxQueue: config.maxQueue, hooks })
    const service = new Service(engine, labels, batcher, backend, batching, instanceBuffers)
    if (engine instanceof EngineThread) {
      // Nothing can be predicted any more: fail readiness and liveness so the orchestrator replaces the process.
      engine.onFailure = () => {
        service.state = 'failed'
      }
    }
    service.state = 'ready'
    const m = files.manifest
    log.info(
      { model: m.name, version: m.version, heads: m.heads, numLabels: m.numLabels, featureDim: m.featureDim, backend: backend.name, ...batching, engineThread: config.engineThread },
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
