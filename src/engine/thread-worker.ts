// Entry point of the engine thread (thread-host.ts starts it): picks the tfjs backend, then loads, runs and unloads
// model versions as the main thread asks: one Engine per version, each warmed up before it is announced. Label
// names stay on the main thread.

import { parentPort, workerData } from 'node:worker_threads'
import { selectBackend } from './backend.js'
import { loadModel } from './model-load.js'
import { readBundleFiles } from '../bundle/files.js'
import { Engine, nextTurn } from './engine.js'
import { encodeResults } from './thread-wire.js'
import { BundleError } from '../errors.js'
import type { EngineWorkerData, FromEngine, ToEngine } from './thread-host.js'

const port = parentPort
if (!port) throw new Error('thread-worker.ts runs as a worker thread (see thread-host.ts)')
const post = (m: FromEngine, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer)
const { backend, nativeDense } = workerData as EngineWorkerData
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))

const log = {
  info: (obj: object, msg: string) => post({ type: 'log', level: 'info', obj, msg }),
  warn: (obj: object, msg: string) => post({ type: 'log', level: 'warn', obj, msg }),
}

selectBackend(backend, log, nativeDense).then(
  (choice) => {
    const engines = new Map<number, Engine>()
    const load = async (model: number, modelDir: string): Promise<void> => {
      try {
        // A turn between the steps (and inside Engine.create): batches of the versions serving run in between.
        const bundle = await loadModel(await readBundleFiles(modelDir))
        await nextTurn()
        const engine = await Engine.create(bundle, choice)
        await nextTurn()
        await engine.warmUp()
        engines.set(model, engine)
        post({ type: 'loaded', model, tensors: engine.numTensors(), weightBytes: engine.weightBytes() })
      } catch (err) {
        const message = messageOf(err)
        post(err instanceof BundleError ? { type: 'load-failed', model, message, bundleFile: err.file, detail: err.detail } : { type: 'load-failed', model, message })
      }
    }
    port.on('message', (m: ToEngine) => {
      if (m.type === 'load') return void load(m.model, m.modelDir)
      if (m.type === 'unload') {
        const engine = engines.get(m.model)
        engines.delete(m.model)
        engine?.dispose()
        // numTensors is the thread-wide count (tfjs's), also once this engine is disposed.
        return post({ type: 'unloaded', model: m.model, tensors: engine?.numTensors() ?? 0 })
      }
      const engine = engines.get(m.model)
      if (engine === undefined) return post({ type: 'error', id: m.id, message: `no model ${m.model} on the engine thread` })
      engine
        .predict(m.features, m.n, m.topK)
        .then((results) => {
          const wire = encodeResults(results)
          const back = [wire.counts.buffer, wire.ids.buffer, wire.logScores.buffer, m.features.buffer] as ArrayBuffer[]
          post({ type: 'result', id: m.id, ...wire, tensors: engine.numTensors(), features: m.features }, back)
        })
        // Any failure, in the model or in sending its answer, fails this batch only; the thread goes on.
        .catch((err: unknown) => post({ type: 'error', id: m.id, message: err instanceof Error ? (err.stack ?? err.message) : String(err) }))
    })
    post({ type: 'backend', backend: choice })
  },
  (err: unknown) => post({ type: 'failed', message: messageOf(err) }),
)
