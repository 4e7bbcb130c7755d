// One engine measurement in a fresh process (so RSS and load time are this bundle's alone):
//   tsx bench/engine-worker.ts BUNDLE_DIR BACKEND BATCH REPS [--kernel-path] [--wasm-kernel]
// Prints one JSON line: load + warm-up time, ms per batch (wall and CPU), RSS after the runs.

import { selectBackend, type BackendName } from '../src/engine/backend.js'
import { loadBundle } from '../src/engine/model-load.js'
import { Engine } from '../src/engine/engine.js'
import { outputWidth } from '../src/mhe/codec.js'
import { features } from './lib/bundles.js'
import { median } from '../tools/lib/stats.js'

const [dir, backendName, batchArg, repsArg, ...flags] = process.argv.slice(2)
const quiet = { info: () => {}, warn: () => {} }
const t0 = performance.now()
// --wasm-kernel: Dense layers on the wasm kernel, not the native one (MHE_NATIVE_DENSE=false).
const backend = await selectBackend(backendName as BackendName, quiet, !flags.includes('--wasm-kernel'))
const bundle = await loadBundle(dir!)
// --kernel-path: everything on the backend (what every bundle used before the JS path for narrow heads).
const engine = await Engine.create(bundle, backend, flags.includes('--kernel-path') ? { jsHeadsMaxWidth: 0 } : {})
const n = Number(batchArg)
const reps = Number(repsArg)
const d = bundle.manifest.featureDim
const x = features(n, d)
const k = new Array<number>(n).fill(1)
await engine.predict(x, n, k)
const readyMs = performance.now() - t0
const wall: number[] = []
const cpu: number[] = []
for (let i = 0; i < reps; i++) {
  const c0 = process.cpuUsage()
  const w0 = performance.now()
  await engine.predict(x, n, k)
  wall.push(performance.now() - w0)
  const c = process.cpuUsage(c0)
  cpu.push((c.user + c.system) / 1000)
}
const sum = outputWidth(bundle.manifest.heads)
process.stdout.write(
  JSON.stringify({
    heads: bundle.manifest.heads,
    numLabels: bundle.manifest.numLabels,
    featureDim: d,
    backend: backend.name,
    nativeDense: backend.nativeDense ?? false,
    batch: n,
    reps,
    readyMs,
    msPerBatch: median(wall),
    cpuMsPerBatch: median(cpu),
    weightBytes: (d + 1) * sum * 4,
    rssMb: process.memoryUsage().rss / 2 ** 20,
  }) + '\n',
)
engine.dispose()
