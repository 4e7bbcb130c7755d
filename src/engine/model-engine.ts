// The one interface of an engine, on this thread (engine.ts) or on a worker thread (thread-host.ts), and the
// function that starts either. The service sees only this.

import type { BackendChoice } from './backend.js'
import { INLINE_MAX_WEIGHT_BYTES, type BackendRequest } from '../config.js'
import type { BundleFiles } from '../bundle/files.js'
import type { Manifest } from '../bundle/manifest.js'
import type { Candidate } from '../mhe/codec.js'
import type { FloatPool } from './float-pool.js'
import { EngineThread, type EngineHost } from './thread-host.js'
import { SplitEngine } from './split-engine.js'
import type { Log } from '../log.js'

export interface ModelEngine {
  readonly manifest: Manifest
  /** The tfjs backend that runs the model, and the candidates tried before it. */
  readonly backend: BackendChoice
  /**
   * Runs one batch. features: n * featureDim float32, row-major; topK[i] = k wanted for instance i. Resolves, per
   * instance, with its exact top-k valid labels, best first (fewer only if the model has fewer labels).
   *
   * Buffer ownership: predict takes `features` over, with its whole underlying buffer. The caller must not read or
   * write it afterwards; once the engine is done with it, the buffer goes to the engine's `recycle` pool (if any).
   */
  predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]>
  /** Live tfjs tensors (on the engine thread: as of its last answer). */
  numTensors(): number
  /** Bytes of the model's weights. */
  weightBytes(): number
  /**
   * Where the feature buffers of finished batches go back to (StartEngineOptions.recycle). Settable after start: the
   * service sizes its batch buffers only once the backend, and with it the batch size, is known (config.ts batchingFor).
   */
  recycle: FloatPool | undefined
  /** Called at most once, when the engine can predict no more (its thread died); never by the in-thread engine. */
  onFailure: ((err: Error) => void) | undefined
  dispose(): void | Promise<void>
}

export interface StartEngineOptions {
  files: BundleFiles
  backend: BackendRequest
  /** On wasm, Dense models on the native kernel where it is built (selectBackend; default true). */
  nativeDense?: boolean
  /** true: on a worker thread, beside the event loop; false: on this thread. */
  thread: boolean
  log: Log
  /** Where the feature buffers of finished batches go back to. */
  recycle?: FloatPool
  /** With thread: the engine thread to load onto (beside the models there); none = a thread of its own. */
  host?: EngineHost
  /**
   * With thread: batches of up to this many instances run on this thread instead (split-engine.ts), on the
   * in-process backends (wasm, cpu) and bundles of up to INLINE_MAX_WEIGHT_BYTES of weights; 0 = none.
   */
  inlineBatch?: number
  /** With inlineBatch: make the copy for it now (default), or once traffic is light (a version loaded while others serve). */
  inlineCopy?: 'now' | 'when-light'
}

/** Picks the backend, loads the model and warms it up, on a worker thread or on this one. */
export async function startEngine(opts: StartEngineOptions): Promise<ModelEngine> {
  const { files, backend, log, recycle } = opts
  const nativeDense = opts.nativeDense ?? true
  if (!opts.thread) return localEngine(files, backend, log, recycle, nativeDense)
  const thread = opts.host
    ? await opts.host.load({ modelDir: files.dir, manifest: files.manifest, recycle })
    : await EngineThread.start({ modelDir: files.dir, backend, nativeDense, manifest: files.manifest, log, recycle })
  const inlineBatch = opts.inlineBatch ?? 0
  // Only where the thread runs an in-process backend: a GPU (or native) backend belongs to its thread alone.
  const inProcess = thread.backend.name === 'wasm' || thread.backend.name === 'cpu'
  if (inlineBatch <= 0 || !inProcess || thread.weightBytes() > INLINE_MAX_WEIGHT_BYTES) return thread
  // The same kernel as the thread's, so that an answer does not depend on where its batch ran.
  const makeLocal = () => localEngine(files, thread.backend.name === 'wasm' ? 'wasm' : 'cpu', log, thread.recycle, thread.backend.nativeDense !== undefined)
  if (opts.inlineCopy === 'when-light') return SplitEngine.whenLight(thread, makeLocal, inlineBatch, log)
  try {
    return await SplitEngine.now(thread, makeLocal, inlineBatch, log)
  } catch (err) {
    await thread.dispose()
    throw err
  }
}

/** The model on this thread, warmed up. Loaded only here, so a main thread that hands every batch to a worker never loads tfjs. */
async function localEngine(files: BundleFiles, backend: BackendRequest, log: Log, recycle: FloatPool | undefined, nativeDense: boolean): Promise<ModelEngine> {
  const [{ selectBackend }, { loadModel }, { Engine }] = await Promise.all([import('./backend.js'), import('./model-load.js'), import('./engine.js')])
  const choice = await selectBackend(backend, log, nativeDense)
  const engine = await Engine.create(await loadModel(files), choice, { recycle })
  try {
    await engine.warmUp()
  } catch (err) {
    engine.dispose()
    throw err
  }
  return engine
}
