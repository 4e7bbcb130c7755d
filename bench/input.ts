// Input: binary float32 against JSON, one instance per request (concurrency 64) and 32 per request (concurrency 16,
// instances/s), d=768, C=10^6, one server, interleaved.

import { startServer } from './lib/server.js'
import { benchBundle, binaryBody, jsonBody } from './lib/bundles.js'
import { interleave, warm, type Target } from './lib/compare.js'
import { DURATION_S, isMain, round, scenario, type ScenarioResult } from './lib/result.js'

export async function run(): Promise<ScenarioResult> {
  return scenario('input', 'Input: binary vs JSON; 1 vs 32 instances per request (d=768, C=10^6)', async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    r.settings = { ...r.settings, bundle: 'd=768, heads 100x100x100, C=10^6', rounds: 2 }
    const svc = await startServer({ env: { MHE_MODEL: b.dir, MHE_BACKEND: 'wasm', MHE_WORKERS: '1' } })
    try {
      const url = `${svc.url}/predict`
      const cpu = svc.cpuMs
      const t = (name: string, n: number, bin: boolean): Target => ({
        name,
        spec: bin
          ? { url, body: binaryBody(n, 768), contentType: 'application/octet-stream', instances: n, serverCpuMs: cpu }
          : { url, body: jsonBody(n, 768), contentType: 'application/json', instances: n, serverCpuMs: cpu },
      })
      const one = [t('JSON, 1 instance', 1, false), t('binary, 1 instance', 1, true)]
      const many = [t('JSON, 32 instances', 32, false), t('binary, 32 instances', 32, true)]
      for (const x of [...one, ...many]) await warm(x.spec, 2)
      const rows = [...(await interleave(one, 64, DURATION_S)), ...(await interleave(many, 16, DURATION_S))]
      for (const x of rows) {
        r.rows.push({
          variant: x.name,
          connections: x.connections,
          reqPerSec: round(x.reqPerSec, 0),
          instancesPerSec: round(x.instancesPerSec, 0),
          p50Ms: round(x.p50Ms),
          p99Ms: round(x.p99Ms),
          cpuUsPerInstance: round(x.cpuUsPerReq / (x.name.includes('32') ? 32 : 1), 1),
          errors: x.errors + x.timeouts + x.non2xx,
        })
      }
      const [j1, b1, j32, b32] = rows
      const ratio = b1!.reqPerSec / j1!.reqPerSec
      r.checks.push({ name: 'binary vs JSON req/s (1 instance, c=64)', target: '>= 1.5x', value: `${round(ratio, 2)}x`, pass: ratio >= 1.5 })
      r.notes.push(
        `32 instances per request: JSON ${round(j32!.instancesPerSec / j1!.instancesPerSec, 2)}x, binary ${round(b32!.instancesPerSec / b1!.instancesPerSec, 2)}x the instances/s of 1 per request`,
        `binary vs JSON at 32 instances: ${round(b32!.instancesPerSec / j32!.instancesPerSec, 2)}x instances/s`,
      )
    } finally {
      await svc.stop()
    }
  })
}

if (isMain(import.meta.url)) await run()
