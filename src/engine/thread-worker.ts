// Entry point of the engine thread (thread-host.ts starts it): picks the tfjs backend, loads the model,
// warms it up, then runs one batch per 'predict' message. Label names stay on the main thread.

import { parentPort, workerData } from 'node:worker_threads'
import { selectBackend } from './backend.js'
import { loadModel } from './model-load.js'
import { readBundleFiles } from '../bundle/files.js'
import { Engine } from './engine.js'
import { encodeResults } from './thread-wire.js'
import { BundleError } from '../errors.js'
import type { EngineWorkerData, FromEngine, ToEngine } from './thread-host.js'

const port = parentPort
if (!port) throw new Error('thread-worker.ts runs as a worker thread (see thread-host.ts)')
const post = (m: FromEngine, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer)
const { modelDir, backend } = workerData as EngineWorkerData

async function start(): Promise<Engine> {
  const log = {
    info: (obj: object, msg: string) => post({ type: 'log', level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => post({ type: 'log', level: 'warn', obj, msg }),
  }
  const choice = await selectBackend(backend, log)
  const engine = await Engine.create(await loadModel(await readBundleFiles(modelDir)), choice)
  await engine.warmUp()
  post({ type: 'ready', backend: choice, tensors: engine.numTensors() })
  return engine
}

start().then(
  (engine) => {
    port.on('message', (m: ToEngine) => {
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
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err)
    post(err instanceof BundleError ? { type: 'failed', message, bundleFile: err.file, detail: err.detail } : { type: 'failed', message })
  },
)
