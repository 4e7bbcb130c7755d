// Hot swap of the 10^6-label bundle (d=768, heads 100x100x100) under load at c=32: p99 in steady state against p99
// while versions are swapped back to back (each load reads, checks and warms up a version beside the one serving,
// then the old one is unloaded once its requests are answered), failed requests (must be 0), and the server's RSS
// with one version, while two are loaded, and after the old one is unloaded.

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, type Running } from './lib/server.js'
import { benchBundle, jsonBody } from './lib/bundles.js'
import { load } from './lib/load.js'
import { DURATION_S, isMain, round, scenario, type ScenarioResult } from './lib/result.js'

const ADMIN = 'bench-admin'
const MODEL = 'xmc'

async function control(server: Running, action: 'load' | 'unload'): Promise<{ status: number; ms: number; body: string }> {
  const t0 = performance.now()
  const res = await fetch(`${server.url}/v2/repository/models/${MODEL}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })
  const body = await res.text()
  return { status: res.status, ms: performance.now() - t0, body }
}

async function tensors(server: Running): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  return Number(/^mhe_tfjs_tensors (\d+)/m.exec(text)?.[1] ?? NaN)
}

/** The event loop's V8 heap and external memory (MB), to tell its memory from the engine thread's in the RSS. */
async function mainThreadMb(server: Running): Promise<{ heapMb: number; externalMb: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const mb = (name: string) => round(Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20, 0)
  return { heapMb: mb('mhe_nodejs_heap_size_total_bytes'), externalMb: mb('mhe_nodejs_external_memory_bytes') }
}

/**
 * RSS (MB) of the server once it settles: a second of load first (an idle server runs no GC, so memory freed by an
 * unload would still be counted), then the lowest of a few samples 200 ms apart.
 */
async function settledRss(server: Running, spec: Parameters<typeof load>[0]): Promise<number> {
  await load({ ...spec, durationS: 1 }, 0)
  const samples: number[] = []
  for (let i = 0; i < 10; i++) {
    samples.push(server.rssMb())
    await new Promise((r) => setTimeout(r, 200))
  }
  return Math.min(...samples)
}

export async function run(): Promise<ScenarioResult> {
  return scenario('swap', 'Hot swap under load (c=32): p99 steady vs during swaps, failed requests, RSS of one, two and again one version of the 10^6-label bundle', async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    const repo = mkdtempSync(join(tmpdir(), 'mhe-swap-'))
    let next = 1
    // Every version is the same bundle through a link: the same bytes, loaded again as a separate version.
    const addVersion = () => symlinkSync(b.dir, join(repo, MODEL, String(next++)))
    mkdirSync(join(repo, MODEL))
    addVersion()
    r.settings = { ...r.settings, bundle: 'd=768, heads 100x100x100, C=10^6', connections: 32, body: 'JSON, 1 instance', backend: 'wasm' }
    const server = await startServer({ env: { MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', MHE_ADMIN_KEYS: ADMIN } })
    try {
      const spec = { url: `${server.url}/predict`, connections: 32, durationS: DURATION_S, body: jsonBody(1, 768), contentType: 'application/json', serverCpuMs: server.cpuMs }
      // One memory row: settled RSS, live tensors and the event loop's heap, after a phase.
      const memory = async (phase: string) => {
        const rssMb = await settledRss(server, spec)
        return { rss: rssMb, row: { phase: `RSS MB: ${phase}`, rssMb: round(rssMb, 0), tensors: await tensors(server), ...(await mainThreadMb(server)) } }
      }
      const steady = await load(spec, 2)
      const one = await memory('one version')

      // Swaps back to back while the load runs: add a version, load it (the old one is unloaded by the policy).
      const swaps: { status: number; ms: number }[] = []
      let peakRss = 0
      let loading = true
      const sampler = (async () => {
        while (loading) {
          peakRss = Math.max(peakRss, server.rssMb())
          await new Promise((res) => setTimeout(res, 20))
        }
      })()
      const during = load({ ...spec }, 0)
      const swapper = (async () => {
        const until = performance.now() + DURATION_S * 1000 - 500
        while (performance.now() < until) {
          addVersion()
          const res = await control(server, 'load')
          if (res.status !== 200) throw new Error(`load answered ${res.status}: ${res.body}`)
          swaps.push(res)
        }
      })()
      const [swapping] = await Promise.all([during, swapper])
      loading = false
      await sampler
      const afterSwaps = await memory('after the swaps (one version)')

      // Two versions at once (policy latest 2), then back to one.
      writeFileSync(join(repo, MODEL, 'policy.json'), '{"latest": 2}')
      addVersion()
      await control(server, 'load')
      const two = await memory('two versions loaded')
      writeFileSync(join(repo, MODEL, 'policy.json'), '{"latest": 1}')
      addVersion()
      await control(server, 'load')
      const backToOne = await memory('back to one version')

      const row = (name: string, x: typeof steady) => ({
        phase: name,
        reqPerSec: round(x.reqPerSec, 0),
        p50Ms: round(x.p50Ms),
        p99Ms: round(x.p99Ms),
        maxMs: round(x.maxMs),
        requests: x.requests,
        failed: x.non2xx + x.errors + x.timeouts,
      })
      r.rows.push(row('steady (one version)', steady), { ...row(`${swaps.length} swaps back to back`, swapping), swapMsMean: round(swaps.reduce((a, s) => a + s.ms, 0) / Math.max(1, swaps.length), 0) })
      const { rss: rssOne } = one
      const { rss: rssTwo } = two
      const { rss: rssBackToOne } = backToOne
      r.rows.push(one.row, { phase: 'RSS MB: peak during the swaps', rssMb: round(peakRss, 0) }, afterSwaps.row, two.row, backToOne.row)
      r.checks.push(
        { name: 'no failed request during swaps', target: '0', value: String(swapping.non2xx + swapping.errors + swapping.timeouts), pass: swapping.non2xx + swapping.errors + swapping.timeouts === 0 },
        { name: 'two versions cost well under twice one', target: `< ${round(1.5 * rssOne, 0)} MB (1.5x)`, value: `${round(rssTwo, 0)} MB`, pass: rssTwo < 1.5 * rssOne },
        { name: 'unloading returns the memory', target: `<= ${round(rssOne * 1.1, 0)} MB (one version + 10%)`, value: `${round(rssBackToOne, 0)} MB`, pass: rssBackToOne <= rssOne * 1.1 },
      )
      r.notes.push(
        `Each swap: a new version folder (a link to the same bundle) and POST /v2/repository/models/${MODEL}/load, which answers once the new version serves and the old one is unloaded; ${swaps.length} swaps in ${DURATION_S} s.`,
      )
    } finally {
      await server.stop()
      rmSync(repo, { recursive: true, force: true })
    }
  })
}

if (isMain(import.meta.url)) await run()
