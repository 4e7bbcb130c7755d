// `npm run bench:soak [-- --predictions N --batch B --concurrency C --sample-ms MS]`: a long run against the real
// server process (node --import tsx src/main.ts) on a heads-only bundle (d=64, heads 32x32, `npm run bench:model`).
// Sends N predictions (default 500,000; a request carries B instances, JSON and binary alternating, top_k varying,
// one request in 25 deliberately bad so error paths run too) and samples the tfjs tensor count (GET /metrics
// mhe_tfjs_tensors) and the process RSS (/proc/PID/status) every few seconds. Writes bench/results/soak.json
// (the curves and a summary) and bench/results/soak.svg (both curves against predictions).

import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { benchBundle, binaryBody, jsonBody } from './lib/bundles.js'
import { startServer } from './lib/server.js'
import { TS_NODE_FLAGS } from '../test/helpers/process.js'
import { machine } from './lib/machine.js'

const { values: args } = parseArgs({
  options: {
    predictions: { type: 'string', default: '500000' },
    batch: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '4' },
    'sample-ms': { type: 'string', default: '2000' },
    // Only redraw bench/results/soak.svg from bench/results/soak.json.
    redraw: { type: 'boolean', default: false },
  },
})
const target = Number(args.predictions)
const batch = Number(args.batch)
const concurrency = Number(args.concurrency)
const sampleMs = Number(args['sample-ms'])
const DIM = 64
const HEADS = [32, 32]

interface Sample {
  seconds: number
  predictions: number
  requests: number
  /** mhe_tfjs_tensors from /metrics; null when the server has no such series. */
  tensors: number | null
  rssMb: number
  /** V8 heap in use, from the default prom-client series (null if absent). */
  heapUsedMb: number | null
}

if (args.redraw) {
  const saved = JSON.parse(await readFile(new URL('results/soak.json', import.meta.url), 'utf8')) as { samples: Sample[] }
  await writeFile(new URL('results/soak.svg', import.meta.url), chart(saved.samples))
  process.exit(0)
}

const bundle = benchBundle(DIM, HEADS)
const server = await startServer({
  argv: [...TS_NODE_FLAGS, 'src/main.ts'],
  env: { MHE_MODEL: bundle.dir, MHE_MAX_INSTANCES: String(Math.max(batch, 64)), LOG_LEVEL: 'warn' },
})
const model = (await (await fetch(`${server.url}/model`)).json()) as { backend: string; numLabels: number }
process.stderr.write(`soak: server ${server.url} ready in ${Math.round(server.readyMs)} ms, backend ${model.backend}\n`)

// A few distinct bodies, cycled: different features and top_k, JSON and binary.
type Body = { path: string; contentType: string; payload: Buffer | string; valid: boolean }
const bodies: Body[] = []
for (let i = 0; i < 8; i++) {
  const k = 1 + ((i * 3) % 10)
  const json = JSON.parse(jsonBody(batch, DIM, 100 + i)) as { instances: number[][] }
  bodies.push({ path: '/predict', contentType: 'application/json', payload: JSON.stringify({ ...json, top_k: k }), valid: true })
  bodies.push({ path: `/predict?top_k=${k}`, contentType: 'application/octet-stream', payload: binaryBody(batch, DIM, 200 + i), valid: true })
}
const bad: Body[] = [
  { path: '/predict', contentType: 'application/json', payload: JSON.stringify({ instances: [new Array(DIM - 1).fill(0)] }), valid: false },
  { path: '/predict', contentType: 'application/octet-stream', payload: Buffer.from(new Float32Array(DIM).fill(Number.NaN).buffer), valid: false },
  { path: '/predict', contentType: 'application/json', payload: '{"instances": [[1, 2,', valid: false },
  { path: '/predict?top_k=0', contentType: 'application/octet-stream', payload: binaryBody(2, DIM, 5), valid: false },
]

let predictions = 0
let requests = 0
let sent = 0
let badAnswered = 0
const unexpected = new Map<string, number>()
const samples: Sample[] = []
const t0 = performance.now()

const metricValue = (text: string, name: string): number | null => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)
  return m ? Number(m[1]) : null
}

async function sample(): Promise<void> {
  let tensors: number | null = null
  let heapUsedMb: number | null = null
  try {
    const res = await fetch(`${server.url}/metrics`)
    if (res.ok) {
      const text = await res.text()
      tensors = metricValue(text, 'mhe_tfjs_tensors')
      const heap = metricValue(text, 'mhe_nodejs_heap_size_used_bytes') ?? metricValue(text, 'nodejs_heap_size_used_bytes')
      heapUsedMb = heap === null ? null : Math.round((heap / 2 ** 20) * 10) / 10
    }
  } catch {
    // The series stays null: reported as missing.
  }
  samples.push({
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    predictions,
    requests,
    tensors,
    rssMb: Math.round(server.rssMb() * 10) / 10,
    heapUsedMb,
  })
}

async function client(id: number): Promise<void> {
  let i = id
  while (predictions + (sent - requests) * batch < target) {
    const b = (i + 1) % 25 === 0 ? bad[i % bad.length]! : bodies[i % bodies.length]!
    i += concurrency
    sent++
    const res = await fetch(`${server.url}${b.path}`, { method: 'POST', headers: { 'content-type': b.contentType }, body: b.payload })
    const text = await res.text()
    requests++
    if (b.valid && res.status === 200) {
      predictions += (JSON.parse(text) as { predictions: unknown[] }).predictions.length
    } else if (!b.valid && res.status === 400) {
      badAnswered++
    } else {
      const key = `${b.valid ? 'valid' : 'bad'} -> ${res.status}`
      unexpected.set(key, (unexpected.get(key) ?? 0) + 1)
    }
  }
}

await sample()
let sampling = true
const sampler = (async () => {
  let lastReport = 0
  while (sampling) {
    await new Promise((r) => setTimeout(r, sampleMs))
    if (!sampling) break
    await sample()
    const s = samples.at(-1)!
    if (s.seconds - lastReport >= 30) {
      lastReport = s.seconds
      process.stderr.write(`  ${s.seconds} s: ${s.predictions} predictions, tensors ${s.tensors ?? 'n/a'}, RSS ${s.rssMb} MB\n`)
    }
  }
})()
await Promise.all(Array.from({ length: concurrency }, (_, id) => client(id)))
sampling = false
await sampler
await sample()
const seconds = (performance.now() - t0) / 1000
const exitCode = await server.stop()

// Flatness: least-squares slope over the second half (after warm-up), per 100,000 predictions.
function slope(points: [number, number][]): number {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((a, p) => a + p[0], 0) / n
  const my = points.reduce((a, p) => a + p[1], 0) / n
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0)
  return sxx === 0 ? 0 : (points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0) / sxx) * 100_000
}
const secondHalf = samples.filter((s) => s.predictions >= predictions / 2)
const afterWarm = samples.find((s) => s.predictions >= Math.min(50_000, predictions / 10)) ?? samples[0]!
const first = samples[0]!
const last = samples.at(-1)!
const tensorSeries = samples.map((s) => s.tensors).filter((x): x is number => x !== null)
const r1 = (x: number) => Math.round(x * 10) / 10
const summary = {
  at: new Date().toISOString(),
  server: 'node --import tsx src/main.ts (real process), backend ' + model.backend,
  bundle: { dim: DIM, heads: HEADS, numLabels: model.numLabels },
  load: { batch, concurrency, badEvery: 25, sampleMs },
  predictions,
  requests,
  badAnswered400: badAnswered,
  unexpected: Object.fromEntries(unexpected),
  seconds: r1(seconds),
  predictionsPerSecond: Math.round(predictions / seconds),
  serverExitCode: exitCode,
  tensors:
    tensorSeries.length === 0
      ? { missing: 'GET /metrics had no mhe_tfjs_tensors series' }
      : { start: first.tensors, end: last.tensors, min: Math.min(...tensorSeries), max: Math.max(...tensorSeries), samples: tensorSeries.length },
  rssMb: {
    start: first.rssMb,
    afterWarmUp: { predictions: afterWarm.predictions, rssMb: afterWarm.rssMb },
    end: last.rssMb,
    max: Math.max(...samples.map((s) => s.rssMb)),
    slopeSecondHalfMbPer100k: r1(slope(secondHalf.map((s) => [s.predictions, s.rssMb]))),
    // RSS saws with V8's garbage collection: the band per eighth of the run shows whether its floor creeps up.
    byEighth: Array.from({ length: 8 }, (_, q) => {
      const w = samples.filter((s) => s.predictions >= (q * predictions) / 8 && s.predictions <= ((q + 1) * predictions) / 8)
      const r = w.map((s) => s.rssMb)
      return { fromPredictions: Math.round((q * predictions) / 8), min: r.length ? Math.min(...r) : null, max: r.length ? Math.max(...r) : null }
    }),
  },
  heapUsedMb: { start: first.heapUsedMb, end: last.heapUsedMb },
  machine: machine(),
}
await mkdir(new URL('results/', import.meta.url), { recursive: true })
await writeFile(new URL('results/soak.json', import.meta.url), `${JSON.stringify({ summary, samples }, null, 2)}\n`)
await writeFile(new URL('results/soak.svg', import.meta.url), chart(samples))

console.log(`soak: ${predictions} predictions in ${requests} requests, ${summary.seconds} s (${summary.predictionsPerSecond}/s), backend ${model.backend}`)
console.log(`  tfjs tensors: ${tensorSeries.length === 0 ? 'MISSING (no mhe_tfjs_tensors in /metrics)' : `start ${first.tensors}, end ${last.tensors}, min ${summary.tensors.min}, max ${summary.tensors.max}`}`)
console.log(`  RSS MB: start ${first.rssMb}, after ${afterWarm.predictions} predictions ${afterWarm.rssMb}, end ${last.rssMb}, max ${summary.rssMb.max}, slope over the 2nd half ${summary.rssMb.slopeSecondHalfMbPer100k} MB per 100k predictions`)
console.log(`  RSS band per eighth of the run (min-max MB): ${summary.rssMb.byEighth.map((b) => `${b.min}-${b.max}`).join(', ')}`)
console.log(`  bad requests answered 400: ${badAnswered}; unexpected: ${JSON.stringify(summary.unexpected)}; server exit code ${exitCode}`)
console.log('  wrote bench/results/soak.json and bench/results/soak.svg')

/** Two panels sharing the x axis (predictions): tfjs tensors on top, RSS (and V8 heap) below. */
function chart(points: Sample[]): string {
  const W = 760
  const H = 220
  const pad = { l: 70, r: 20, t: 30, b: 40 }
  const xMax = Math.max(1, ...points.map((p) => p.predictions))
  const x = (v: number) => pad.l + (v / xMax) * (W - pad.l - pad.r)
  const panel = (top: number, title: string, series: { name: string; color: string; values: (number | null)[] }[]) => {
    const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null))
    if (all.length === 0) {
      return `<text x="${pad.l}" y="${top + H / 2}" font-size="14">${title}: no data (series missing)</text>`
    }
    // From zero: a flat line looks flat, and a small wobble is not blown up into a slope.
    const lo = 0
    const hi = Math.max(...all) * 1.25 + 1
    const y = (v: number) => top + pad.t + (1 - (v - lo) / (hi - lo)) * (H - pad.t - pad.b)
    const out: string[] = [`<text x="${pad.l}" y="${top + 18}" font-size="14" font-weight="bold">${title}</text>`]
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4
      out.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`)
      out.push(`<text x="${pad.l - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${Math.round(v * 10) / 10}</text>`)
      const xv = (xMax * i) / 4
      out.push(`<text x="${x(xv)}" y="${top + H - pad.b + 16}" font-size="11" text-anchor="middle">${Math.round(xv / 1000)}k</text>`)
    }
    series.forEach((s, si) => {
      const pts = points.flatMap((p, i) => (s.values[i] === null ? [] : [`${x(p.predictions).toFixed(1)},${y(s.values[i]!).toFixed(1)}`]))
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.join(' ')}"/>`)
      out.push(`<text x="${W - pad.r - 150}" y="${top + 18 + si * 14}" font-size="12" fill="${s.color}">${s.name}</text>`)
    })
    out.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${top + H - pad.b}" y2="${top + H - pad.b}" stroke="#333"/>`)
    out.push(`<line x1="${pad.l}" x2="${pad.l}" y1="${top + pad.t}" y2="${top + H - pad.b}" stroke="#333"/>`)
    return out.join('\n')
  }
  const body = [
    panel(0, 'tfjs tensors (mhe_tfjs_tensors)', [{ name: 'tensors', color: '#1f77b4', values: points.map((p) => p.tensors) }]),
    panel(H, 'memory, MB', [
      { name: 'RSS', color: '#d62728', values: points.map((p) => p.rssMb) },
      { name: 'V8 heap used', color: '#2ca02c', values: points.map((p) => p.heapUsedMb) },
    ]),
    `<text x="${W / 2}" y="${2 * H + 10}" font-size="12" text-anchor="middle">predictions (instances answered)</text>`,
  ].join('\n')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${2 * H + 20}" viewBox="0 0 ${W} ${2 * H + 20}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`
}
