// Hot swap of the 10^6-label bundle (d=768, heads 100x100x100) under load at c=32: p99 in steady state against p99
// while versions are swapped a second apart (new versions with the serving version's labels, then with labels of their
// own) and back to back (each load reads, checks and warms up a version beside the one serving,
// then the old one is unloaded once its requests are answered), failed requests (must be 0), and the server's RSS
// with one version, while two are loaded, and after the old one is unloaded.
//
// BENCH_SWAP_BEFORE=path/to/main.js (a build of an earlier commit, run from this checkout's node_modules) measures
// that server the same way in the same run, each phase on it and then on this build, so that before/after rows see
// the same machine state (the machine's load drifts over a minute far more than phase to phase).
// BENCH_SWAP_ROUNDS=N (default 1) repeats the spaced phases N times, the builds in turn, and adds the median of the
// rounds' spikes: one round's p99 during 8 swaps swung by more than the changes it was to compare (session 10).

import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, type Running } from './lib/server.js'
import { benchBundle, jsonBody } from './lib/bundles.js'
import { load, quantile, timedLoad } from './lib/load.js'
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

/**
 * The event loop's V8 heap (committed and in use) and external memory (MB), to tell its memory from the engine
 * thread's in the RSS.
 */
async function mainThreadMb(server: Running): Promise<{ heapMb: number; heapUsedMb: number; externalMb: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const mb = (name: string) => round(Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20, 0)
  return { heapMb: mb('mhe_nodejs_heap_size_total_bytes'), heapUsedMb: mb('mhe_nodejs_heap_size_used_bytes'), externalMb: mb('mhe_nodejs_external_memory_bytes') }
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

type Load = Parameters<typeof load>[0]
type Row = ScenarioResult['rows'][number]
type Measured = Awaited<ReturnType<typeof load>>

/** One server build under test, with a repository of its own. */
interface Subject {
  label: string
  server: Running
  repo: string
  /** Where copies wait to become versions. */
  stage: string
  spec: Load
  /** Adds the next version: a link to the bench bundle, or with `ownLabels` a copy staged before (stageCopies). */
  addVersion: (ownLabels?: boolean) => void
  /** Copies of the bundle, each with a labels file of its own, made before a phase that uses them (not during its load). */
  stageCopies: (count: number) => void
  rss: Record<string, number>
}

async function subject(label: string, argv: string[] | undefined, bundleDir: string): Promise<Subject> {
  const repo = mkdtempSync(join(tmpdir(), 'mhe-swap-'))
  const stage = mkdtempSync(join(tmpdir(), 'mhe-swap-stage-'))
  const staged: string[] = []
  let next = 1
  let copies = 0
  // A version is the same bundle through a link (the same bytes, loaded again as a separate version: its labels are
  // shared with the version serving), or a staged copy whose labels file differs in its first byte (the same length:
  // compared, then read and indexed as a new store), moved in by one rename.
  const addVersion = (ownLabels = false) => {
    const dir = join(repo, MODEL, String(next++))
    if (!ownLabels) return symlinkSync(bundleDir, dir)
    const copy = staged.shift()
    if (copy === undefined) throw new Error('no staged copy left: stageCopies first')
    renameSync(copy, dir)
  }
  const stageCopies = (count: number) => {
    for (let i = 0; i < count; i++) {
      const copy = join(stage, String(copies++)) // a name of its own: copies left over from an earlier phase stay staged
      cpSync(bundleDir, copy, { recursive: true, dereference: true })
      const labels = join(copy, 'labels.txt')
      const bytes = readFileSync(labels)
      bytes[0] = 0x41 + (i % 26) // "A".."Z" in place of the "l" of "label-0"
      writeFileSync(labels, bytes)
      staged.push(copy)
    }
  }
  mkdirSync(join(repo, MODEL))
  addVersion()
  const server = await startServer({ argv, env: { MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', MHE_ADMIN_KEYS: ADMIN } })
  const spec: Load = { url: `${server.url}/predict`, connections: 32, durationS: DURATION_S, body: jsonBody(1, 768), contentType: 'application/json', serverCpuMs: server.cpuMs }
  return { label, server, repo, stage, spec, addVersion, stageCopies, rss: {} }
}

/**
 * One memory row after a phase: settled RSS, live tensors, the event loop's JS heap (committed and in use), and the
 * RSS less that heap, which the checks compare. A version's memory (its labels, its model on both threads) is outside
 * the event loop's heap, while the heap's own size follows the garbage collector: between phases with the same
 * versions loaded it moved from 70 to 86-106 MB committed and from 36 to 85 MB in use, and back after a full GC (a
 * heap snapshot), as the full GCs came sooner or later.
 */
async function memory(s: Subject, key: string, phase: string): Promise<Row> {
  const rssMb = await settledRss(s.server, s.spec)
  const heap = await mainThreadMb(s.server)
  const lessHeap = rssMb - heap.heapMb
  s.rss[key] = lessHeap
  return { phase: `${s.label}RSS MB: ${phase}`, rssMb: round(rssMb, 0), rssLessJsHeapMb: round(lessHeap, 0), tensors: await tensors(s.server), ...heap }
}

const loadRow = (s: Subject, name: string, x: Measured): Row => ({
  phase: `${s.label}${name}`,
  reqPerSec: round(x.reqPerSec, 0),
  p50Ms: round(x.p50Ms),
  p99Ms: round(x.p99Ms),
  maxMs: round(x.maxMs),
  requests: x.requests,
  failed: x.non2xx + x.errors + x.timeouts,
})

/** Swaps back to back while the load runs: add a version, load it (the old one is unloaded by the policy). */
async function swapPhase(r: ScenarioResult, s: Subject, steady: Measured): Promise<void> {
  const swaps: number[] = []
  let peakRss = 0
  let loading = true
  const sampler = (async () => {
    while (loading) {
      peakRss = Math.max(peakRss, s.server.rssMb())
      await new Promise((res) => setTimeout(res, 20))
    }
  })()
  const during = load({ ...s.spec }, 0)
  const swapper = (async () => {
    const until = performance.now() + DURATION_S * 1000 - 500
    while (performance.now() < until) {
      s.addVersion()
      const res = await control(s.server, 'load')
      if (res.status !== 200) throw new Error(`load answered ${res.status}: ${res.body}`)
      swaps.push(res.ms)
    }
  })()
  const [swapping] = await Promise.all([during, swapper])
  loading = false
  await sampler
  swaps.sort((a, b) => a - b)
  const failed = swapping.non2xx + swapping.errors + swapping.timeouts
  r.rows.push({
    ...loadRow(s, `${swaps.length} swaps back to back`, swapping),
    swapMsMean: round(swaps.reduce((a, x) => a + x, 0) / Math.max(1, swaps.length), 0),
    swapMsMax: round(swaps.at(-1) ?? 0, 0),
    p99RatioToSteady: round(swapping.p99Ms / Math.max(1, steady.p99Ms)),
  })
  r.rows.push({ phase: `${s.label}RSS MB: peak during the swaps`, rssMb: round(peakRss, 0) })
  r.checks.push({ name: `${s.label}no failed request during swaps`, target: '0', value: String(failed), pass: failed === 0 })
}

/** Answers that arrive this long after a swap's load call returned still count as during it (queued behind it). */
const AFTER_SWAP_MS = 50

/**
 * A swap a second under the same load, every answer timed: the answers that arrive while a swap runs (from its load
 * call until AFTER_SWAP_MS after it answered) against the others of the same run, so that both sides see the same
 * machine state. This is the spike one swap causes; back-to-back swaps measure the cost of swapping all the time.
 */
async function spacedSwapPhase(r: ScenarioResult, s: Subject, ownLabels: boolean, roundName = ''): Promise<number> {
  const windows: [number, number][] = []
  const spec = { ...s.spec, url: s.spec.url as string, durationS: 2 * DURATION_S }
  if (ownLabels) s.stageCopies(spec.durationS)
  const name = `${ownLabels ? 'a swap a second, each version with labels of its own' : 'a swap a second'}${roundName}`
  const start = performance.now()
  const during = timedLoad(spec)
  const swapper = (async () => {
    for (let at = 1000; at < spec.durationS * 1000 - 1000; at += 1000) {
      await new Promise((res) => setTimeout(res, Math.max(0, start + at - performance.now())))
      s.addVersion(ownLabels)
      const t0 = performance.now()
      const res = await control(s.server, 'load')
      if (res.status !== 200) throw new Error(`load answered ${res.status}: ${res.body}`)
      windows.push([t0, performance.now() + AFTER_SWAP_MS])
    }
  })()
  const [{ answers, errors }] = await Promise.all([during, swapper])
  const inSwap = (at: number) => windows.some(([a, b]) => at >= a && at <= b)
  const sides = { outside: [] as number[], inside: [] as number[] }
  let failed = errors
  for (const a of answers) {
    if (a.status < 200 || a.status > 299) failed++
    ;(inSwap(a.at) ? sides.inside : sides.outside).push(a.ms)
  }
  const row = (name: string, xs: number[], extra: Row = {}): Row => ({
    phase: `${s.label}${name}`,
    p50Ms: round(quantile(xs, 0.5)),
    p99Ms: round(quantile(xs, 0.99)),
    maxMs: round(quantile(xs, 1)),
    requests: xs.length,
    ...extra,
  })
  const p99Out = quantile(sides.outside, 0.99)
  const p99In = quantile(sides.inside, 0.99)
  r.rows.push(
    row(`${name}: answers between swaps`, sides.outside),
    row(`${name}: answers during the ${windows.length} swaps`, sides.inside, {
      failed,
      swapMsMean: round(windows.reduce((a, [x, y]) => a + y - x - AFTER_SWAP_MS, 0) / Math.max(1, windows.length), 0),
      p99RatioToBetween: round(p99In / p99Out),
    }),
  )
  r.checks.push({ name: `${s.label}no failed request during spaced swaps${ownLabels ? ' (labels of their own)' : ''}${roundName}`, target: '0', value: String(failed), pass: failed === 0 })
  return p99In - p99Out
}

export async function run(): Promise<ScenarioResult> {
  return scenario('swap', 'Hot swap under load (c=32): p99 steady vs during swaps, failed requests, RSS of one, two and again one version of the 10^6-label bundle', async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    r.settings = { ...r.settings, bundle: 'd=768, heads 100x100x100, C=10^6', connections: 32, body: 'JSON, 1 instance', backend: 'wasm' }
    const before = process.env.BENCH_SWAP_BEFORE
    const subjects: Subject[] = []
    try {
      if (before !== undefined && before !== '') {
        r.settings = { ...r.settings, before }
        subjects.push(await subject('before: ', [before], b.dir))
      }
      subjects.push(await subject(subjects.length > 0 ? 'after: ' : '', undefined, b.dir))
      // Each phase on every subject in turn (the idle server meanwhile costs no CPU).
      const each = async (f: (s: Subject) => Promise<void>) => {
        for (const s of subjects) await f(s)
      }
      const steady = new Map<Subject, Measured>()
      await each(async (s) => {
        steady.set(s, await load(s.spec, 2))
        r.rows.push(loadRow(s, 'steady (one version)', steady.get(s)!))
      })
      await each(async (s) => void r.rows.push(await memory(s, 'fresh', 'one version, freshly started')))
      const rounds = Math.max(1, Number(process.env.BENCH_SWAP_ROUNDS ?? 1))
      r.settings = { ...r.settings, spacedRounds: rounds }
      for (const ownLabels of [false, true]) {
        const spikes = new Map<Subject, number[]>(subjects.map((s) => [s, []]))
        for (let i = 0; i < rounds; i++) {
          await each(async (s) => void spikes.get(s)!.push(await spacedSwapPhase(r, s, ownLabels, rounds > 1 ? ` (round ${i + 1})` : '')))
        }
        if (rounds === 1) continue
        for (const s of subjects) {
          const xs = spikes.get(s)!
          r.rows.push({
            phase: `${s.label}${ownLabels ? 'labels of their own' : 'labels shared'}: p99 during minus between the swaps, median of ${rounds} rounds`,
            spikeMs: round(quantile(xs, 0.5)), // nearest rank: the middle round of an odd count
            spikesMs: xs.map((x) => round(x)).join(' / '),
          })
        }
      }
      // The baseline of the memory checks: the process after its first swaps. A fresh one has not yet grown what stays
      // at its high-water mark and is reused by every later version (the wasm memory of the two tfjs instances, the
      // engine thread's heap): over 150 swaps the RSS less the JS heap rose by ~25 MB in the first 60-90 and no further
      // (121, 137, 139, 147, 146, 147 MB every 30 swaps; the build before this session: 114, 151, 126, 126, 136, 139).
      await each(async (s) => void r.rows.push(await memory(s, 'one', `one version, after ${2 * rounds * (2 * DURATION_S - 2)} swaps`)))
      await each((s) => swapPhase(r, s, steady.get(s)!))
      await each(async (s) => void r.rows.push(await memory(s, 'afterSwaps', 'after the swaps (one version)')))
      // Two versions at once (policy latest 2), then back to one.
      const withPolicy = async (s: Subject, latest: number, key: string, phase: string) => {
        writeFileSync(join(s.repo, MODEL, 'policy.json'), `{"latest": ${latest}}`)
        s.addVersion()
        await control(s.server, 'load')
        r.rows.push(await memory(s, key, phase))
      }
      await each((s) => withPolicy(s, 2, 'two', 'two versions loaded'))
      await each((s) => withPolicy(s, 1, 'backToOne', 'back to one version'))
      for (const s of subjects) {
        const { one, two, afterSwaps, backToOne } = s.rss as Record<'one' | 'two' | 'afterSwaps' | 'backToOne', number>
        // The RSS less the event loop's JS heap (memory() says why); the raw RSS is in the rows.
        r.checks.push(
          { name: `${s.label}two versions cost well under twice one`, target: `< ${round(1.5 * one, 0)} MB (1.5x)`, value: `${round(two, 0)} MB`, pass: two < 1.5 * one },
          { name: `${s.label}unloading returns the memory`, target: `<= ${round(one * 1.1, 0)} MB (one version + 10%)`, value: `${round(backToOne, 0)} MB`, pass: backToOne <= one * 1.1 },
          { name: `${s.label}the swaps return the memory`, target: `<= ${round(one * 1.1, 0)} MB (one version + 10%)`, value: `${round(afterSwaps, 0)} MB`, pass: afterSwaps <= one * 1.1 },
        )
      }
    } finally {
      for (const s of subjects) {
        await s.server.stop()
        for (const dir of [s.repo, s.stage]) rmSync(dir, { recursive: true, force: true })
      }
    }
    r.notes.push(
      `Each swap: a new version folder (a link to the same bundle, whose labels the new version shares with the one serving; in the phase "labels of its own", a copy made before the load whose labels.txt differs in its first byte, so that the new version reads and indexes them) and POST /v2/repository/models/${MODEL}/load, which answers once the new version serves and the old one is unloaded.`,
    )
  })
}

if (isMain(import.meta.url)) await run()
