// Batching: dynamic batching (several MHE_MAX_DELAY_MS) against MHE_MAX_BATCH=1, one JSON instance per request,
// d=768, C=10^6, concurrency 64, all servers up at once and measured interleaved.

import { startServer, type Running } from './lib/server.js'
import { benchBundle, jsonBody } from './lib/bundles.js'
import { interleave, warm, type Target } from './lib/compare.js'
import { DURATION_S, isMain, round, scenario, type ScenarioResult } from './lib/result.js'

const VARIANTS: { name: string; env: Record<string, string> }[] = [
  { name: 'MHE_MAX_BATCH=1', env: { MHE_MAX_BATCH: '1', MHE_MAX_DELAY_MS: '0' } },
  { name: 'dynamic, delay 0 ms (default: one event-loop turn)', env: { MHE_MAX_DELAY_MS: '0' } },
  { name: 'dynamic, delay 2 ms', env: { MHE_MAX_DELAY_MS: '2' } },
  { name: 'dynamic, delay 5 ms', env: { MHE_MAX_DELAY_MS: '5' } },
]

export async function run(connections = 64): Promise<ScenarioResult> {
  return scenario('batching', `Batching: dynamic vs MHE_MAX_BATCH=1, concurrency ${connections}, one JSON instance`, async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    r.settings = { ...r.settings, bundle: 'd=768, heads 100x100x100, C=10^6', connections, maxBatch: 256, rounds: 2 }
    const servers: Running[] = []
    try {
      for (const v of VARIANTS) servers.push(await startServer({ env: { MHE_MODEL: b.dir, MHE_BACKEND: 'wasm', MHE_WORKERS: '1', ...v.env } }))
      const body = jsonBody(1, 768)
      const targets: Target[] = VARIANTS.map((v, i) => ({
        name: v.name,
        spec: { url: `${servers[i]!.url}/predict`, body, contentType: 'application/json', serverCpuMs: servers[i]!.cpuMs },
      }))
      for (const t of targets) await warm(t.spec)
      const res = await interleave(targets, connections, DURATION_S)
      const base = res[0]!
      for (const x of res) {
        r.rows.push({
          variant: x.name,
          reqPerSec: round(x.reqPerSec, 0),
          vsUnbatched: round(x.reqPerSec / base.reqPerSec, 3),
          p50Ms: round(x.p50Ms),
          p99Ms: round(x.p99Ms),
          cpuUsPerReq: round(x.cpuUsPerReq, 0),
          errors: x.errors + x.timeouts + x.non2xx,
        })
      }
      const best = res.slice(1).reduce((a, x) => (x.reqPerSec > a.reqPerSec ? x : a))
      r.notes.push(`best dynamic setting here: ${best.name}, ${round(best.reqPerSec / base.reqPerSec, 2)}x the unbatched req/s`)
    } finally {
      for (const s of servers) await s.stop()
    }
  })
}

if (isMain(import.meta.url)) await run()
