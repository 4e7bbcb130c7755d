// Backends: wasm (with the native Dense kernel where it is built, as shipped, and without it) against cpu (pure JS),
// and tensorflow (tfjs-node) where it installs: engine time per batch of 256 in-process, and /predict req/s at
// concurrency 16 over HTTP, d=768, C=10^6.

import { startServer } from './lib/server.js'
import { benchBundle, jsonBody } from './lib/bundles.js'
import { interleave, warm, type Target } from './lib/compare.js'
import { DURATION_S, isMain, round, scenario, type ScenarioResult } from './lib/result.js'
import { measure } from './engine.js'
import { selectBackend } from '../src/engine/backend.js'
import { denseAddon } from '../src/engine/native-dense.js'

export async function run(): Promise<ScenarioResult> {
  return scenario('backends', 'Backends: wasm vs cpu (and tensorflow where installed), d=768, C=10^6', async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    r.settings = { ...r.settings, bundle: 'd=768, heads 100x100x100, C=10^6', httpConnections: 16 }
    const tried = await selectBackend('tensorflow', { info() {}, warn() {} }).then(
      () => 'available',
      (err: unknown) => (err as Error).message,
    )
    const native = denseAddon()
    if (!('addon' in native)) r.notes.push(`native Dense kernel not measured: ${native.reason}`)
    const sides = [
      ...('addon' in native ? [{ name: `wasm + native Dense (${native.addon.vectors})`, backend: 'wasm', wasmKernel: false }] : []),
      { name: 'wasm', backend: 'wasm', wasmKernel: true },
      { name: 'cpu', backend: 'cpu', wasmKernel: true },
      ...(tried === 'available' ? [{ name: 'tensorflow', backend: 'tensorflow', wasmKernel: true }] : []),
    ]
    const backends = sides.map((s) => s.name)
    if (tried !== 'available') r.notes.push(`tensorflow backend not measured: ${tried}`)
    const engine = new Map(sides.map((s) => [s.name, measure(b.dir, s.backend, 256, s.backend === 'cpu' ? 5 : 30, s.wasmKernel ? ['--wasm-kernel'] : [])]))
    const servers = await Promise.all(
      sides.map((s) => startServer({ env: { MHE_MODEL: b.dir, MHE_BACKEND: s.backend, MHE_WORKERS: '1', MHE_NATIVE_DENSE: String(!s.wasmKernel) } })),
    )
    try {
      const body = jsonBody(1, 768)
      const targets: Target[] = backends.map((name, i) => ({
        name,
        spec: { url: `${servers[i]!.url}/predict`, body, contentType: 'application/json', serverCpuMs: servers[i]!.cpuMs },
      }))
      for (const t of targets) await warm(t.spec, 2)
      const res = await interleave(targets, 16, DURATION_S)
      const wasmEngine = engine.get('wasm')!
      res.forEach((x, i) => {
        const e = engine.get(backends[i]!)!
        r.rows.push({
          backend: backends[i],
          engineMsPerBatch256: round(e.msPerBatch),
          engineCpuMsPerBatch256: round(e.cpuMsPerBatch),
          engineVsWasm: round(e.cpuMsPerBatch / wasmEngine.cpuMsPerBatch, 2),
          reqPerSec: round(x.reqPerSec, 0),
          p50Ms: round(x.p50Ms),
          p99Ms: round(x.p99Ms),
          cpuUsPerReq: round(x.cpuUsPerReq, 0),
          errors: x.errors + x.timeouts + x.non2xx,
        })
      })
    } finally {
      for (const s of servers) await s.stop()
    }
  })
}

if (isMain(import.meta.url)) await run()
