// A/B of builds or settings (not part of npm run bench): the ceiling and one or more service builds, interleaved at
// one concurrency, one JSON instance per request (AB_BINARY=1: raw float32). How each change of session 2 was judged.
// Usage: npx tsx bench/ab.ts [c] [distDir[?K=V&K=V]...]   (a dist dir holds src/main.js; default: ./dist)
// e.g. cp -r dist .ab/old; (change, npm run build); npx tsx bench/ab.ts 64 .ab/old dist 'dist?MHE_MAX_DELAY_MS=2'
import { startServer } from './lib/server.js'
import { benchBundle, jsonBody } from './lib/bundles.js'
import { interleave, warm, type Target } from './lib/compare.js'
import { DURATION_S } from './lib/result.js'

const c = Number(process.argv[2] ?? 64)
const dists = process.argv.slice(3)
if (dists.length === 0) dists.push('dist')
const binary = process.env.AB_BINARY === '1'
const b = benchBundle(768, [100, 100, 100])
const nodeFlags = process.env.AB_NODE_FLAGS ? process.env.AB_NODE_FLAGS.split(' ') : []
// The ceiling: bare Fastify with its defaults (no logger); AB_LOGGED_CEILING=1 adds the one with pino at info.
const ceiling = await startServer({ argv: ['--import', 'tsx', 'bench/ceiling-server.ts'], nodeFlags })
const logged = process.env.AB_LOGGED_CEILING === '1'
  ? await startServer({ argv: ['--import', 'tsx', 'bench/ceiling-server.ts'], nodeFlags, env: { CEILING_LOGGER: 'same', LOG_LEVEL: 'info' } })
  : undefined
const svcs = []
for (const spec of dists) {
  const [d, q] = spec.split('?')
  const extra = Object.fromEntries(new URLSearchParams(q ?? ''))
  svcs.push(await startServer({ argv: [`${d}/src/main.js`], nodeFlags, env: { MHE_MODEL: b.dir, MHE_BACKEND: 'wasm', MHE_WORKERS: '1', ...extra } }))
}
const body = binary ? Buffer.from(new Float32Array(768).map((_, i) => Math.sin(i)).buffer) : jsonBody(1, 768)
const ct = binary ? 'application/octet-stream' : 'application/json'
const targets: Target[] = [
  { name: 'ceiling', spec: { url: `${ceiling.url}/predict`, body: jsonBody(1, 768), contentType: 'application/json', serverCpuMs: ceiling.cpuMs } },
  ...(logged ? [{ name: 'ceiling+log', spec: { url: `${logged.url}/predict`, body: jsonBody(1, 768), contentType: 'application/json', serverCpuMs: logged.cpuMs } }] : []),
  ...svcs.map((s, i) => ({ name: dists[i]!, spec: { url: `${s.url}/predict`, body, contentType: ct, serverCpuMs: s.cpuMs } })),
]
for (const t of targets) await warm(t.spec)
const res = await interleave(targets, c, DURATION_S, Number(process.env.AB_ROUNDS ?? 2))
for (const r of res) console.log(`${r.name.padEnd(20)} ${r.reqPerSec.toFixed(0)} req/s ratio ${(r.reqPerSec / res[0]!.reqPerSec).toFixed(3)} p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(1)} cpu/req ${r.cpuUsPerReq.toFixed(0)} cores ${r.serverCores.toFixed(2)} loadgen ${r.loadgenCores.toFixed(2)}`)
await ceiling.stop()
await logged?.stop()
for (const s of svcs) await s.stop()
