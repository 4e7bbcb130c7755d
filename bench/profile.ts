// Where the CPU goes: node --cpu-prof on the service and on the ceiling server under the same load (c=64, one
// JSON instance), summarised by package/file. The .cpuprofile files stay in bench/profiles/ (open them in
// Chrome DevTools or speedscope for a flame graph).

import { readdirSync, rmSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, startServer } from './lib/server.js'
import { load } from './lib/load.js'
import { benchBundle, jsonBody } from './lib/bundles.js'
import { summarise } from './lib/profile-summary.js'
import { DURATION_S, isMain, round, scenario, type ScenarioResult } from './lib/result.js'

// BENCH_PROFILE_C=1 profiles one request at a time instead.
const CONNECTIONS = Number(process.env.BENCH_PROFILE_C ?? 64)

export async function run(): Promise<ScenarioResult> {
  return scenario('profile', `CPU profile at concurrency ${CONNECTIONS}, one JSON instance: service vs ceiling`, async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    for (const which of ['ceiling', 'predict'] as const) {
      const dir = join(ROOT, 'bench/profiles', which)
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      const nodeFlags = ['--cpu-prof', '--cpu-prof-dir', dir]
      const s =
        which === 'ceiling'
          ? await startServer({ argv: ['--import', 'tsx', 'bench/ceiling-server.ts'], nodeFlags })
          : await startServer({ env: { MHE_MODEL: b.dir, MHE_BACKEND: 'wasm', MHE_WORKERS: '1' }, nodeFlags })
      const res = await load({ url: `${s.url}/predict`, connections: CONNECTIONS, durationS: DURATION_S + 3, body: jsonBody(1, 768), contentType: 'application/json', serverCpuMs: s.cpuMs }, 2)
      await s.stop()
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
      if (!file) throw new Error(`no profile written in ${dir}`)
      const sum = summarise(join(dir, file), 12)
      r.rows.push({
        server: which,
        reqPerSec: round(res.reqPerSec, 0),
        cpuUsPerReq: round(res.cpuUsPerReq, 0),
        profile: `bench/profiles/${which}/${file}`,
        topAreas: sum.byArea.map((a) => `${a.area} ${a.pct}%`).join(', '),
        topFunctions: sum.byFunction.slice(0, 8).map((f) => `${f.name} ${f.pct}%`).join(', '),
      })
    }
  })
}

if (isMain(import.meta.url)) await run()
