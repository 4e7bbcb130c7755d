// The engine on a worker thread: the model's arithmetic (most of a batch's CPU) runs beside the HTTP event loop
// instead of on it, so parsing and answering requests go on while a batch computes. The same ModelEngine as
// Engine; bench/README.md (processes and threads) has the numbers that chose this as the default.

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
  modelDir: string
  backend: BackendRequest
}

/** Main thread -> engine thread: one batch. `features` is transferred (the sender loses it). */
export interface ToEngine {
  id: number
  features: Float32Array
  n: number
  topK: Int32Array
}

/** Engine thread -> main thread. */
export type FromEngine =
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg: string }
  | { type: 'ready'; backend: BackendChoice; tensors: number }
  | { type: 'failed'; message: string; bundleFile?: string; detail?: string }
  | ({ type: 'result'; id: number; tensors: number; features: Float32Array } & WireResults)
  | { type: 'error'; id: number; message: string }

interface Waiting {
  resolve: (r: Candidate[][]) => void
  reject: (e: Error) => void
}

/**
 * Starts the worker from the file beside this one: thread-worker.js when compiled, thread-worker.ts when this file runs
 * as TypeScript, in which case whoever runs the sources provides the loader (tests: tools/lib/ts-workers.ts).
 */
function spawn(data: EngineWorkerData): Worker {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
  return new Worker(new URL(`./thread-worker.${ext}`, import.meta.url), { workerData: data })
}

export class EngineThread implements ModelEngine {
  /** Called once if the thread dies; every prediction after that fails. */
  onFailure: ((err: Error) => void) | undefined
  recycle: FloatPool | undefined
  private readonly waiting = new Map<number, Waiting>()
  private seq = 0
  private failure: Error | undefined
  private disposed = false

  private constructor(
    private readonly worker: Worker,
    readonly manifest: Manifest,
    readonly backend: BackendChoice,
    private tensors: number,
    private readonly log: Log,
    recycle: FloatPool | undefined,
  ) {
    this.recycle = recycle
    worker.on('message', (m: FromEngine) => this.onMessage(m))
    worker.on('error', (err) => this.fail(err))
    worker.on('messageerror', (err) => this.fail(err)) // an answer that cannot be read: its batch would wait forever
    worker.on('exit', (code) => this.fail(new Error(`the engine thread exited with code ${code}`)))
    worker.unref() // the HTTP server keeps the process alive; the thread is ref'd only while a batch runs
  }

  /** Spawns the thread and resolves once its model is loaded and warmed up; rejects with its start-up error. */
  static start(opts: {
    modelDir: string
    backend: BackendRequest
    manifest: Manifest
    log: Log
    /** Where the feature buffers of finished batches go back to. */
    recycle?: FloatPool
  }): Promise<EngineThread> {
    const worker = spawn({ modelDir: opts.modelDir, backend: opts.backend })
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromEngine): void => {
        if (m.type === 'log') opts.log[m.level](m.obj, m.msg)
        if (m.type !== 'ready' && m.type !== 'failed') return
        worker.off('message', onMessage).off('error', onError).off('exit', onExit)
        if (m.type === 'ready') return resolve(new EngineThread(worker, opts.manifest, m.backend, m.tensors, opts.log, opts.recycle))
        void worker.terminate()
        reject(m.bundleFile !== undefined ? new BundleError(m.bundleFile, m.detail ?? m.message) : new Error(m.message))
      }
      const onError = (err: Error): void => {
        void worker.terminate()
        reject(err)
      }
      const onExit = (code: number): void => reject(new Error(`the engine thread exited with code ${code} while starting`))
      worker.on('message', onMessage).on('error', onError).on('exit', onExit)
    })
  }

  /**
   * ModelEngine.predict: the features' whole buffer moves to the engine thread (the caller's view is detached) and
   * comes back to `recycle` with the answer.
   */
  predict(features: Float32Array, n: number, topK: ArrayLike<number>): Promise<Candidate[][]> {
    const refused = this.failure ?? (this.disposed ? new Error('engine is disposed') : undefined)
    if (refused) {
      this.recycle?.reclaim(features)
      return Promise.reject(refused)
    }
    const id = ++this.seq
    const x = features.buffer instanceof ArrayBuffer ? features : features.slice() // a shared buffer cannot move
    const msg: ToEngine = { id, features: x, n, topK: Int32Array.from(topK) }
    return new Promise((resolve, reject) => {
      this.worker.postMessage(msg, [x.buffer as ArrayBuffer, msg.topK.buffer as ArrayBuffer])
      if (this.waiting.size === 0) this.worker.ref()
      this.waiting.set(id, { resolve, reject })
    })
  }

  /** Live tensors in the engine thread, as of its last answer. */
  numTensors(): number {
    return this.tensors
  }

  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    const err = new Error('engine is disposed')
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
    await this.worker.terminate()
  }

  private onMessage(m: FromEngine): void {
    if (m.type === 'log') return this.log[m.level](m.obj, m.msg)
    if (m.type !== 'result' && m.type !== 'error') return
    const w = this.settle(m.id)
    if (!w) return
    if (m.type === 'error') return w.reject(new Error(`engine thread: ${m.message}`))
    this.tensors = m.tensors
    this.recycle?.reclaim(m.features)
    w.resolve(decodeResults(m, this.manifest.heads))
  }

  private settle(id: number): Waiting | undefined {
    const w = this.waiting.get(id)
    this.waiting.delete(id)
    if (this.waiting.size === 0) this.worker.unref()
    return w
  }

  private fail(err: Error): void {
    if (this.disposed || this.failure) return
    this.failure = err
    this.log.error({ err }, 'the engine thread died; predictions fail from now on')
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
    this.onFailure?.(err)
  }
}
