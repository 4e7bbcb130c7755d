// The engine on a worker thread: the model's arithmetic (most of a batch's CPU) runs beside the HTTP event loop
// instead of on it, so parsing and answering requests go on while a batch computes. One thread (EngineHost) holds
// every loaded model version (tfjs and its backend once, each version's weights once): a new version loads there
// between the batches of the one serving (its files are read asynchronously), and an unloaded one frees its tensors
// there. EngineThread is one model on that thread, the same ModelEngine as Engine; bench/README.md (processes and
// threads) has the numbers that chose the thread as the default.

import { Worker } from 'node:worker_threads'
import type { BackendChoice } from './backend.js'
import type { BackendRequest } from '../config.js'
import type { Candidate } from '../mhe/codec.js'
import { decodeResults, type WireResults } from './thread-wire.js'
import { BundleError } from '../errors.js'
import type { Manifest } from '../bundle/manifest.js'
import type { FloatPool } from './float-pool.js'
import type { Log } from '../log.js'
import type { ModelEngine } from './model-engine.js'

export interface EngineWorkerData {
  backend: BackendRequest
  /** selectBackend's nativeDense (MHE_NATIVE_DENSE). */
  nativeDense: boolean
}

/** Main thread -> engine thread. A batch's `features` is transferred (the sender loses it). */
export type ToEngine =
  | { type: 'load'; model: number; modelDir: string }
  | { type: 'unload'; model: number }
  | { type: 'predict'; model: number; id: number; features: Float32Array; n: number; topK: Int32Array }

/** Engine thread -> main thread. */
export type FromEngine =
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg: string }
  | { type: 'backend'; backend: BackendChoice }
  | { type: 'failed'; message: string }
  | { type: 'loaded'; model: number; tensors: number; weightBytes: number }
  | { type: 'load-failed'; model: number; message: string; bundleFile?: string; detail?: string }
  | { type: 'unloaded'; model: number; tensors: number }
  | ({ type: 'result'; id: number; tensors: number; features: Float32Array } & WireResults)
  | { type: 'error'; id: number; message: string }

interface Waiting {
  model: EngineThread
  resolve: (r: Candidate[][]) => void
  reject: (e: Error) => void
}

/**
 * The engine thread's young generation, in MB. With V8's default it grew under load to ~13 MB between scavenges, and
 * V8, unable to promise the old generation room for a whole young generation, followed scavenges with full
 * mark-compacts that freed nothing: a 3-8 ms stop of the engine thread (and every batch waiting on it) about every
 * 2 s, and one per hot swap (`--trace-gc`). At 4 MB its scavenges take 0.2-1 ms and no mark-compact came in 10 s at
 * c=32 with 8 swaps; CPU per request the same (bench/README.md, session 10).
 */
export const ENGINE_YOUNG_GENERATION_MB = 4

/**
 * Starts the worker from the file beside this one: thread-worker.js when compiled, thread-worker.ts when this file runs
 * as TypeScript, in which case whoever runs the sources provides the loader (tests: tools/lib/ts-workers.ts).
 */
function spawn(data: EngineWorkerData): Worker {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
  return new Worker(new URL(`./thread-worker.${ext}`, import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: ENGINE_YOUNG_GENERATION_MB } })
}

/** The engine thread and the model versions on it. */
export class EngineHost {
  private readonly waiting = new Map<number, Waiting>()
  private readonly pending = new Map<number, { resolve: (m: FromEngine) => void }>()
  private readonly models = new Set<EngineThread>()
  private seq = 0
  private modelSeq = 0
  private failure: Error | undefined
  private closed = false
  /** Live tensors on the thread (every model's), as of its last answer. */
  tensors = 0

  private constructor(
    readonly worker: Worker,
    readonly backend: BackendChoice,
    private readonly log: Log,
  ) {
    worker.on('message', (m: FromEngine) => this.onMessage(m))
    worker.on('error', (err) => this.fail(err))
    worker.on('messageerror', (err) => this.fail(err)) // an answer that cannot be read: its batch would wait forever
    worker.on('exit', (code) => this.fail(new Error(`the engine thread exited with code ${code}`)))
    worker.unref() // the HTTP server keeps the process alive; the thread is ref'd only while a batch runs
  }

  /** Spawns the thread and resolves once its backend is chosen; rejects with the reason it could not be. */
  static start(backend: BackendRequest, log: Log, nativeDense = true): Promise<EngineHost> {
    const worker = spawn({ backend, nativeDense })
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromEngine): void => {
        if (m.type === 'log') log[m.level](m.obj, m.msg)
        if (m.type !== 'backend' && m.type !== 'failed') return
        worker.off('message', onMessage).off('error', onError).off('exit', onExit)
        if (m.type === 'backend') return resolve(new EngineHost(worker, m.backend, log))
        void worker.terminate()
        reject(new Error(m.message))
      }
      const onError = (err: Error): void => {
        void worker.terminate()
        reject(err)
      }
      const onExit = (code: number): void => reject(new Error(`the engine thread exited with code ${code} while starting`))
      worker.on('message', onMessage).on('error', onError).on('exit', onExit)
    })
  }

  /** Loads and warms up the bundle at `modelDir` on the thread, beside the models already there. */
  async load(opts: { modelDir: string; manifest: Manifest; recycle?: FloatPool }): Promise<EngineThread> {
    if (this.failure) throw this.failure
    if (this.closed) throw new Error('the engine thread is closed')
    const model = ++this.modelSeq
    const answer = await this.request(model, { type: 'load', model, modelDir: opts.modelDir })
    if (answer.type === 'load-failed') {
      throw answer.bundleFile !== undefined ? new BundleError(answer.bundleFile, answer.detail ?? answer.message) : new Error(answer.message)
    }
    const engine = new EngineThread(this, model, opts.manifest, opts.recycle, answer.type === 'loaded' ? answer.weightBytes : 0)
    this.models.add(engine)
    return engine
  }

  /** Ends the thread (every model on it with it). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const err = new Error('engine is disposed')
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
    await this.worker.terminate()
  }

  /** @internal EngineThread.predict */
  predict(engine: EngineThread, features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
    const id = ++this.seq
    const x = features.buffer instanceof ArrayBuffer ? features : features.slice() // a shared buffer cannot move
    const msg: ToEngine = { type: 'predict', model: engine.model, id, features: x, n, topK: Int32Array.from(topK) }
    return new Promise((resolve, reject) => {
      this.worker.postMessage(msg, [x.buffer as ArrayBuffer, msg.topK.buffer as ArrayBuffer])
      if (this.waiting.size === 0) this.worker.ref()
      this.waiting.set(id, { model: engine, resolve, reject })
    })
  }

  /** @internal EngineThread.dispose: its batches still waiting are refused, its tensors freed on the thread. */
  async unload(engine: EngineThread): Promise<void> {
    const err = new Error('engine is disposed')
    for (const [id, w] of this.waiting) {
      if (w.model !== engine) continue
      this.settle(id)
      w.reject(err)
    }
    this.models.delete(engine)
    if (this.failure || this.closed) return
    await this.request(engine.model, { type: 'unload', model: engine.model })
  }

  get refused(): Error | undefined {
    return this.failure ?? (this.closed ? new Error('engine is disposed') : undefined)
  }

  /** Sends a load or unload and resolves with the thread's answer about that model. */
  private request(model: number, msg: ToEngine): Promise<FromEngine> {
    return new Promise((resolve) => {
      this.pending.set(model, { resolve })
      this.worker.ref() // until the answer: nothing else may hold the process open while it loads
      this.worker.postMessage(msg)
    })
  }

  private onMessage(m: FromEngine): void {
    if (m.type === 'log') return this.log[m.level](m.obj, m.msg)
    if (m.type === 'loaded' || m.type === 'load-failed' || m.type === 'unloaded') {
      if (m.type !== 'load-failed') this.tensors = m.tensors
      const p = this.pending.get(m.model)
      this.pending.delete(m.model)
      if (this.waiting.size === 0 && this.pending.size === 0) this.worker.unref()
      p?.resolve(m)
      return
    }
    if (m.type !== 'result' && m.type !== 'error') return
    const w = this.settle(m.id)
    if (!w) return
    if (m.type === 'error') return w.reject(new Error(`engine thread: ${m.message}`))
    this.tensors = m.tensors
    w.model.recycle?.reclaim(m.features)
    w.resolve(decodeResults(m, w.model.manifest.heads))
  }

  private settle(id: number): Waiting | undefined {
    const w = this.waiting.get(id)
    this.waiting.delete(id)
    if (this.waiting.size === 0 && this.pending.size === 0) this.worker.unref()
    return w
  }

  private fail(err: Error): void {
    if (this.closed || this.failure) return
    this.failure = err
    this.log.error({ err }, 'the engine thread died; predictions fail from now on')
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
    for (const p of this.pending.values()) p.resolve({ type: 'load-failed', model: 0, message: err.message })
    this.pending.clear()
    for (const m of this.models) m.onFailure?.(err)
  }
}

/** One model version on the engine thread. */
export class EngineThread implements ModelEngine {
  /** Called once if the thread dies; every prediction after that fails. */
  onFailure: ((err: Error) => void) | undefined
  recycle: FloatPool | undefined
  private disposed = false
  /** Set when this model started its own thread (EngineThread.start): disposing it ends the thread. */
  private ownsHost = false

  /** @internal EngineHost.load */
  constructor(
    private readonly host: EngineHost,
    readonly model: number,
    readonly manifest: Manifest,
    recycle: FloatPool | undefined,
    private readonly weights: number,
  ) {
    this.recycle = recycle
  }

  /** A thread of its own with this one model on it (resolves once loaded and warmed up). */
  static async start(opts: { modelDir: string; backend: BackendRequest; nativeDense?: boolean; manifest: Manifest; log: Log; recycle?: FloatPool }): Promise<EngineThread> {
    const host = await EngineHost.start(opts.backend, opts.log, opts.nativeDense)
    try {
      const engine = await host.load(opts)
      engine.ownsHost = true
      return engine
    } catch (err) {
      await host.close()
      throw err
    }
  }

  get backend(): BackendChoice {
    return this.host.backend
  }

  /** The thread it runs on. */
  get worker(): Worker {
    return this.host.worker
  }

  /**
   * ModelEngine.predict: the features' whole buffer moves to the engine thread (the caller's view is detached) and
   * comes back to `recycle` with the answer.
   */
  predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
    const refused = this.host.refused ?? (this.disposed ? new Error('engine is disposed') : undefined)
    if (refused) {
      this.recycle?.reclaim(features)
      return Promise.reject(refused)
    }
    return this.host.predict(this, features, n, topK)
  }

  /** Live tensors on the engine thread (every model's there), as of its last answer. */
  numTensors(): number {
    return this.host.tensors
  }

  weightBytes(): number {
    return this.weights
  }

  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    await this.host.unload(this)
    if (this.ownsHost) await this.host.close()
  }
}
