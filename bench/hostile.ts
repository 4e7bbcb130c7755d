// `npx tsx bench/hostile.ts [--root DIR] [--label NAME] [--scenario bomb|max] [--cpu-prof DIR]`: what hostile and maximal requests cost the real server
// (issue 17). Two scenarios, each on a fresh process (src/main.ts of --root through tsx; default this checkout, so
// `--root` pointed at a copy of main gives the "before"):
//   bomb: 3 concurrent 16 MiB bodies of `[` on /predict;
//   max:  50 concurrent max-size JSON requests, 1,024 instances x 4,096 single-digit values (10.5 MB each).
// Meanwhile a second process asks /health/live every 100 ms with a 1 s timeout (a Kubernetes probe's default). Reports
// per scenario: the server's own event-loop delay (mhe_nodejs_eventloop_lag_max_seconds, prom-client's
// monitorEventLoopDelay, reset at each scrape: scraped before and after), liveness latency (max, p99) and probes
// over 1 s, peak RSS (VmHWM), and the answers by status. Writes bench/results/hostile-<label>.json.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { benchBundle } from './lib/bundles.js'
import { ROOT, startServer } from './lib/server.js'

/** The sources through tsx, the engine thread included (test/helpers/process.ts has the same; it imports tap). */
const TS_NODE_FLAGS = ['--import', 'tsx', '--import', './tools/lib/ts-workers.ts']

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', default: ROOT },
    label: { type: 'string', default: 'after' },
    /** Run one scenario only (the results file then holds just it). */
    scenario: { type: 'string' },
    /** Write the server's CPU profile (node --cpu-prof) into this folder, to see what blocks its event loop. */
    'cpu-prof': { type: 'string' },
  },
})
const DIM = 4096
const bundle = benchBundle(DIM, [32, 32])

const vmHwmMb = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
const vmRssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

async function loopLagMs(url: string): Promise<number> {
  // The event-loop guard answers 503 while the loop lags: ask again until the scrape is answered.
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${url}/metrics`)
    const text = await res.text()
    const m = /^mhe_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)/m.exec(text)
    if (m) return Number(m[1]) * 1000
    await new Promise((r) => setTimeout(r, 200))
  }
  return NaN
}

function maxBody(): Buffer {
  const parts: string[] = []
  let s = 7
  for (let i = 0; i < 1024; i++) {
    const row = new Array<number>(DIM)
    for (let j = 0; j < DIM; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0
      row[j] = (s % 19) - 9
    }
    parts.push(`[${row.join(',')}]`)
  }
  return Buffer.from(`{"instances":[${parts.join(',')}]}`)
}

interface Scenario {
  name: string
  body: Buffer
  concurrency: number
}

/** Asks `url` every 100 ms with a 1 s timeout (a Kubernetes probe's default) from a child process, until stop(). */
function startProber(url: string): { stop: () => Promise<{ probes: number[]; failed: number }> } {
  const script = `
    const probes = []; let failed = 0; let on = true
    process.on('SIGTERM', () => { on = false })
    ;(async () => {
      while (on) {
        const t0 = performance.now()
        try { const r = await fetch(process.argv[1], { signal: AbortSignal.timeout(1000) }); await r.text(); probes.push(performance.now() - t0) }
        catch { failed++; probes.push(1000) }
        await new Promise((r) => setTimeout(r, 100))
      }
      process.stdout.write(JSON.stringify({ probes, failed }))
    })()`
  const child = spawn(process.execPath, ['-e', script, url], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise((r) => child.once('exit', r))
  return {
    stop: async () => {
      child.kill('SIGTERM')
      await exited
      return JSON.parse(out) as { probes: number[]; failed: number }
    },
  }
}

async function run(s: Scenario) {
  const nodeFlags = args['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']]
  const server = await startServer({ argv: [...TS_NODE_FLAGS, join(args.root, 'src/main.ts')], env: { MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm' }, nodeFlags })
  const pid = server.child.pid!
  try {
    const restRssMb = vmRssMb(pid)
    await loopLagMs(server.url) // resets the lag histogram
    // The prober is a process of its own: in this one it would wait behind the uploads of the 500 MB it sends.
    const prober = startProber(`${server.url}/health/live`)
    const statuses: Record<string, number> = {}
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: s.concurrency }, async () => {
        let key: string
        try {
          const res = await fetch(`${server.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: s.body, signal: AbortSignal.timeout(120_000) })
          const json = (await res.json()) as { code?: string }
          key = `${res.status}${json.code ? ` ${json.code}` : ''}`
        } catch (err) {
          key = `error ${(err as Error).name}`
        }
        statuses[key] = (statuses[key] ?? 0) + 1
      }),
    )
    const wallMs = performance.now() - t0
    await new Promise((r) => setTimeout(r, 300))
    const { probes, failed } = await prober.stop()
    const sorted = [...probes].sort((a, b) => a - b)
    return {
      scenario: s.name,
      concurrency: s.concurrency,
      bodyBytes: s.body.length,
      wallMs: Math.round(wallMs),
      eventLoopLagMaxMs: Math.round(await loopLagMs(server.url)),
      liveness: { probes: probes.length, maxMs: Math.round(sorted.at(-1) ?? 0), p99Ms: Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? 0), over1s: failed },
      rssAtRestMb: Math.round(restRssMb),
      peakRssMb: Math.round(vmHwmMb(pid)),
      statuses,
    }
  } finally {
    await server.stop()
  }
}

const results = []
for (const s of [
  { name: 'bomb', body: Buffer.alloc(16 * 1024 * 1024 - 1024, '['), concurrency: 3 },
  { name: 'max', body: maxBody(), concurrency: 50 },
].filter((s) => args.scenario === undefined || s.name === args.scenario)) {
  const r = await run(s)
  process.stdout.write(`${args.label} ${JSON.stringify(r)}\n`)
  results.push(r)
}
await mkdir(join(ROOT, 'bench/results'), { recursive: true })
await writeFile(join(ROOT, `bench/results/hostile-${args.label}.json`), JSON.stringify({ label: args.label, root: args.root === ROOT ? '.' : args.root, results }, null, 2) + '\n')
