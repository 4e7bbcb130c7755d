// Loads one bundle folder into something that predicts: its labels, its engine (on the engine thread by default, beside
// the versions already there), and a batcher in front of it. One Loaded per served version; freeing it (unload)
// frees its tensors.

import { batchingFor, type BackendRequest, type Batching, type Config } from '../config.js'
import type { BackendChoice } from '../engine/backend.js'
import type { Manifest } from '../bundle/manifest.js'
import { readBundleFiles, withLabels } from '../bundle/files.js'
import { startEngine, type ModelEngine } from '../engine/model-engine.js'
import type { EngineHost } from '../engine/thread-host.js'
import type { LabelStore } from '../bundle/labels.js'
import { Batcher, type BatcherHooks } from './batcher.js'
import type { Candidate } from '../mhe/codec.js'
import { FloatPool } from '../engine/float-pool.js'
import { instancePool } from './instance-pools.js'
import type { Log } from '../log.js'

/** One instance on its way through the batcher: its feature vector and how many labels it wants. */
export interface Instance {
  features: Float32Array
  k: number
}

/** What one loaded bundle serves: the engine, its labels, the batcher in front of it. */
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

export interface LoadOptions {
  dir: string
  backend: BackendRequest
  config: Config
  log: Log
  hooks?: BatcherHooks
  /** The engine thread every version shares (config.engineThread); none = in this thread. */
  host?: EngineHost
  /** When to make the copy of the model for small batches (StartEngineOptions.inlineCopy; default now). */
  inlineCopy?: 'now' | 'when-light'
}

/** Reads and checks the bundle at `dir`, starts its engine and warms it up, and puts a batcher in front of it. */
export async function loadBundle({ dir, backend, config, log, hooks, host, inlineCopy }: LoadOptions): Promise<Loaded> {
  const files = await readBundleFiles(dir)
  const [labels, engine] = await withLabels(files, () =>
    startEngine({ files, backend, nativeDense: config.nativeDense, thread: config.engineThread, inlineBatch: config.inlineBatch, inlineCopy, log, host }),
  )
  const d = files.manifest.featureDim
  const instanceBuffers = instancePool(d)
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

/**
 * Stops taking work, answers everything queued or running, then frees the engine (its thread, its tensors) and the
 * labels. Call once no request holds the version (ServedVersion.idle): answers look names up until they are sent.
 */
export async function unloadBundle(loaded: Loaded): Promise<void> {
  loaded.batcher.close()
  await loaded.batcher.drain()
  await loaded.engine.dispose()
  loaded.labels.release()
}
