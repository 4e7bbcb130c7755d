// The prediction service behind the HTTP layer: reads the bundle's labels, starts the engine (on its own thread by
// default, MHE_ENGINE_THREAD) and feeds it through the dynamic batcher; its state is the Lifecycle's. Knows nothing
// of HTTP.

import { batchingFor, type Batching, type Config } from '../config.js'
import type { BackendChoice } from '../engine/backend.js'
import type { Manifest } from '../bundle/manifest.js'
import { readBundleFiles, readLabels } from '../bundle/files.js'
import { startEngine, type ModelEngine } from '../engine/model-engine.js'
import type { LabelStore } from '../bundle/labels.js'
import { Batcher, type BatcherHooks } from './batcher.js'
import type { Candidate } from '../mhe/codec.js'
import { FloatPool } from '../engine/float-pool.js'
import type { Log } from '../log.js'
import { Lifecycle, type ServiceState } from './lifecycle.js'

/** One instance on its way through the batcher: its feature vector and how many labels it wants. */
export interface Instance {
  features: Float32Array
  k: number
}

/** Upper bound on the memory kept in recycled one-instance feature buffers. */
const INSTANCE_POOL_BYTES = 8 * 1024 * 1024

/** What a started service serves: the engine, its labels, the batcher in front of it. */
export interface Loaded {
  readonly engine: ModelEngine
  readonly labels: LabelStore
  readonly batcher: Batcher<Instance, Candidate[]>
  readonly backend: BackendChoice
  /** maxBatch and maxDelayMs as resolved for the backend (config.ts batchingFor). */
  readonly batching: Batching
  /** Feature buffers of one instance (featureDim floats), recycled once their batch has copied them. */
  readonly instanceBuffers: FloatPool
  readonly manifest: Manifest
}

/** Loads the bundle, starts the engine and warms it up, and puts the batcher in front of it. */
async function load(config: Config, log: Log, hooks: BatcherHooks | undefined): Promise<Loaded> {
  const files = await readBundleFiles(config.modelDir)
  const labels = await readLabels(files)
  const d = files.manifest.featureDim
  const instanceBuffers = new FloatPool(d, Math.max(16, Math.floor(INSTANCE_POOL_BYTES / (4 * d))))
  const engine = await startEngine({ files, backend: config.backend, thread: config.engineThread, log })
  // The batch size depends on the backend (a GPU wants larger batches), known only now.
  const batching = batchingFor(config, engine.backend.gpu)
  const batchBuffers = new FloatPool(batching.maxBatch * d, 2)
  engine.recycle = batchBuffers
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
  const batcher = new Batcher(runBatch, { ...batching, maxQueue: config.maxQueue, hooks })
  return { engine, labels, batcher, backend: engine.backend, batching, instanceBuffers, manifest: files.manifest }
}

export class Service {
  readonly lifecycle = new Lifecycle()
  private current: Loaded | undefined
  private starting: Promise<void> | undefined

  constructor(
    private readonly config: Config,
    private readonly log: Log,
    private readonly hooks?: BatcherHooks,
  ) {}

  get state(): ServiceState {
    return this.lifecycle.state
  }

  /** What is served, once start() has loaded it; undefined while starting or after a failed start. */
  get loaded(): Loaded | undefined {
    return this.current
  }

  get engine(): ModelEngine {
    return this.model().engine
  }

  get batcher(): Batcher<Instance, Candidate[]> {
    return this.model().batcher
  }

  get manifest(): Manifest {
    return this.model().manifest
  }

  /**
   * Loads the model and warms it up, then the service is ready (unless a drain began meanwhile). Rejects with the
   * load's error (a BundleError names the file) and leaves the service failed. Call once.
   */
  start(): Promise<void> {
    this.starting ??= this.load()
    return this.starting
  }

  private async load(): Promise<void> {
    let loaded: Loaded
    try {
      loaded = await load(this.config, this.log, this.hooks)
    } catch (err) {
      this.lifecycle.to('failed')
      throw err
    }
    this.current = loaded
    const { engine, backend, batching, manifest: m } = loaded
    // Nothing can be predicted any more: fail readiness and liveness so the orchestrator replaces the process.
    engine.onFailure = () => this.lifecycle.to('failed')
    this.lifecycle.to('ready')
    this.log.info(
      { model: m.name, version: m.version, heads: m.heads, numLabels: m.numLabels, featureDim: m.featureDim, backend: backend.name, ...batching, engineThread: this.config.engineThread },
      'model loaded and warmed up',
    )
  }

  /** Stops taking work, answers everything queued or running, then frees the model (once a load in progress ends). */
  async close(): Promise<void> {
    this.lifecycle.to('closing')
    await this.starting?.catch(() => undefined) // its failure was reported to whoever started it
    const loaded = this.current
    if (loaded === undefined) return
    loaded.batcher.close()
    await loaded.batcher.drain()
    await loaded.engine.dispose()
  }

  private model(): Loaded {
    if (this.current === undefined) throw new Error(`the model is not loaded (service ${this.state})`)
    return this.current
  }
}
