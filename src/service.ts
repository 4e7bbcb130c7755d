// The prediction service behind the HTTP layer: picks the backend, loads the bundle, warms the engine up and
// feeds it through the dynamic batcher. Knows nothing of HTTP.

import type { Config } from './config.js'
import { selectBackend, type BackendChoice } from './backend.js'
import { loadBundle } from './bundle/load.js'
import { Engine } from './engine.js'
import { Batcher, type BatcherHooks } from './batcher.js'
import type { Candidate } from './codec.js'

/** One instance on its way through the batcher: its feature vector and how many labels it wants. */
export interface Instance {
  features: Float32Array
  k: number
}

/** draining: not ready but serving; closing: no new connections, open ones answered then closed. */
export type ServiceState = 'starting' | 'ready' | 'draining' | 'closing'

export interface ServiceLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export class Service {
  state: ServiceState = 'starting'

  private constructor(
    readonly engine: Engine,
    readonly batcher: Batcher<Instance, Candidate[]>,
    readonly backend: BackendChoice,
  ) {}

  static async create(config: Config, log: ServiceLog, hooks?: BatcherHooks): Promise<Service> {
    const backend = await selectBackend(config.backend, log)
    const bundle = await loadBundle(config.modelDir)
    const engine = await Engine.create(bundle, backend.name)
    const d = bundle.manifest.featureDim
    const runBatch = async (items: Instance[]): Promise<Candidate[][]> => {
      const features = new Float32Array(items.length * d)
      items.forEach((item, i) => features.set(item.features, i * d))
      return engine.predict(features, items.length, items.map((item) => item.k))
    }
    const batcher = new Batcher(runBatch, {
      maxBatch: config.maxBatch,
      maxDelayMs: config.maxDelayMs,
      maxQueue: config.maxQueue,
      hooks,
    })
    const service = new Service(engine, batcher, backend)
    await engine.warmUp()
    service.state = 'ready'
    const m = bundle.manifest
    log.info(
      { model: m.name, version: m.version, heads: m.heads, numLabels: m.numLabels, featureDim: m.featureDim, backend: backend.name },
      'model loaded and warmed up',
    )
    return service
  }

  /** Stops taking work, answers everything queued or running, then frees the model. */
  async close(): Promise<void> {
    this.state = 'draining'
    this.batcher.close()
    await this.batcher.drain()
    this.engine.dispose()
  }
}
