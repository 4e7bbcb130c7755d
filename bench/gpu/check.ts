// The GPU check of issue 15, in one run on the GPU machine (bench/gpu/run.sh starts it there; README.md in this
// folder says how). For a heads bundle (MHE), its one-head OHE baseline and the demo:
//   1. the engine on wasm and on the backend under test (webgpu): the same features' top-5 compared (ids equal
//      except near-ties, log-scores within compare.ts's tolerance) and ms per batch of 1, 32, 256, 4096;
//   2. the real server (dist/src/main.js) on each: /predict answers (binary body) compared the same way, and /predict
//      req/s at c=64 and c=256, also with the GPU backend on the CPU batching defaults (the batching effect).
// Writes gpu.json, gpu.md and the server logs of failures into --out ($OUT on the GPU machine).
//
//   node .gpu/bench/main.mjs [--backend webgpu] [--quick] [--duration S] [--deadline S] [--out DIR]
//   npx tsx bench/gpu/check.ts --backend wasm --quick --out /tmp/gpu-dry     (the dry run on a CPU machine)

import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { writeBenchModel } from '../../tools/bench-model.js'
import { median } from '../../tools/lib/stats.js'
import { ROOT, startServer, type Running } from '../lib/server.js'
import { load } from '../lib/load.js'
import { binaryBody, features, jsonBody } from '../lib/bundles.js'
import { machine } from '../lib/machine.js'
import { round } from '../lib/result.js'
import { compareAnswers, LOG_SCORE_TOLERANCE, type Agreement, type Answer } from './compare.js'
import { selectBackend, type BackendName } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine } from '../../src/engine/engine.js'
import { probeAdapter } from '../../src/engine/webgpu.js'

const TOP_K = 5
const ANSWER_ROWS = 64
const ANSWER_SEED = 11
// ~1 s of wasm at ~20 GFLOP/s (bench/results/engine.json): larger batches on CPU backends are not timed.
const CPU_MAX_MULTIPLY_ADDS = 2e10
const quiet = { info() {}, warn() {} }
// Dawn reports a failed validation or a lost device once per call: the first one ends the runs on that backend.
const DAWN_ERROR = /validation error|device (was )?lost|Dawn: .*error/i
const NO_BACKEND = /MHE_BACKEND=\w+: (no GPU adapter|only a (fallback|software)|\S+ is not installed)/

interface BundleSpec {
  name: string
  dir: string
  dim: number
  heads: number[]
  numLabels: number
}

interface EngineRun {
  backend: string
  gpu: boolean
  device?: string
  readyMs: number
  /** Batch sizes not timed (CPU backends past CPU_MAX_MULTIPLY_ADDS). */
  skipped: number[]
  answers: Answer[]
  batches: { batch: number; msMedian: number; msMin: number; reps: number }[]
}

// ---------------------------------------------------------------------------------------------------------------
// Engine child: `--engine DIR BACKEND BATCHES BUDGET_MS` prints one JSON line (EngineRun).

async function engineChild(dir: string, backendName: string, batches: number[], budgetMs: number): Promise<void> {
  const t0 = performance.now()
  const choice = await selectBackend(backendName as BackendName, quiet)
  const bundle = await loadBundle(dir)
  const engine = await Engine.create(bundle, choice.name)
  await engine.warmUp()
  const d = bundle.manifest.featureDim
  const readyMs = performance.now() - t0
  const answers = await engine.predict(features(ANSWER_ROWS, d, ANSWER_SEED), ANSWER_ROWS, new Array<number>(ANSWER_ROWS).fill(TOP_K))
  const rows: EngineRun['batches'] = []
  // The model's weights are the only tensors now: their count is its multiply-adds per instance (Dense layers).
  const params = tf.memory().numBytes / 4
  const skipped: number[] = []
  for (const n of batches) {
    // On the CPU backends a batch of OHE 10^5 x 768 at 4096 takes ~30 s on wasm: not worth the GPU machine's time.
    if (!choice.gpu && n * params > CPU_MAX_MULTIPLY_ADDS) {
      skipped.push(n)
      continue
    }
    const x = features(n, d)
    const k = new Array<number>(n).fill(1)
    await engine.predict(x, n, k) // first call of a shape: kernels compiled, buffers made
    const times: number[] = []
    const start = performance.now()
    while (times.length < 2 || (performance.now() - start < budgetMs && times.length < 200)) {
      const w0 = performance.now()
      await engine.predict(x, n, k)
      times.push(performance.now() - w0)
    }
    rows.push({ batch: n, msMedian: median(times), msMin: Math.min(...times), reps: times.length })
  }
  const run: EngineRun = {
    backend: choice.name,
    gpu: choice.gpu,
    ...(choice.device !== undefined && { device: choice.device }),
    readyMs,
    skipped,
    answers: answers.map((list) => list.map((c): [number, number] => [c.id, c.logScore])),
    batches: rows,
  }
  process.stdout.write(JSON.stringify(run) + '\n')
  engine.dispose()
}

/** Runs the engine child; rejects with the tail of its output if it fails, prints a Dawn error or outlives timeoutMs. */
function runEngine(dir: string, backend: string, batches: number[], budgetMs: number, timeoutMs: number): Promise<EngineRun> {
  const args = [process.argv[1]!, '--engine', dir, backend, batches.join(','), String(budgetMs)]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const stop = (why: string): void => {
      child.kill('SIGKILL')
      reject(new Error(`${why}: ${err.slice(-1500)}`))
    }
    const timer = setTimeout(() => stop(`engine ${backend} on ${dir} outlived ${timeoutMs / 1000} s`), timeoutMs)
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-20_000)
      if (DAWN_ERROR.test(err)) stop(`engine ${backend}: Dawn error`)
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      const last = out.trim().split('\n').pop() ?? ''
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as EngineRun)
      else reject(new Error(`engine ${backend} on ${dir} exited with ${code}: ${err.slice(-1500)}`))
    })
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Servers

interface Metrics {
  batchSum: number
  batchCount: number
}

async function batchMetrics(url: string): Promise<Metrics> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  return { batchSum: value('mhe_batch_size_sum'), batchCount: value('mhe_batch_size_count') }
}

async function serverAnswers(url: string, dim: number): Promise<Answer[]> {
  const res = await fetch(`${url}/predict?top_k=${TOP_K}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: binaryBody(ANSWER_ROWS, dim, ANSWER_SEED),
  })
  if (!res.ok) throw new Error(`/predict (binary) answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
  const body = (await res.json()) as { predictions: { top_k: { label_id: number; score: number }[] }[] }
  return body.predictions.map((p) => p.top_k.map((c): [number, number] => [c.label_id, Math.log(c.score)]))
}

// ---------------------------------------------------------------------------------------------------------------
// The run

interface Options {
  backend: string
  quick: boolean
  durationS: number
  deadlineS: number
  out: string
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'webgpu' },
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      deadline: { type: 'string', default: '480' },
      out: { type: 'string', default: process.env.OUT ?? join(tmpdir(), 'mhe-gpu-check') },
    },
    strict: true,
  })
  return {
    backend: values.backend,
    quick: values.quick,
    durationS: Number(values.duration ?? (values.quick ? 1 : 5)),
    deadlineS: Number(values.deadline),
    out: values.out,
  }
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '(none)\n'
  const cols = Object.keys(rows[0]!)
  const line = (cells: unknown[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n') + '\n'
}

async function main(o: Options): Promise<number> {
  const t0 = performance.now()
  const left = (): number => o.deadlineS - (performance.now() - t0) / 1000
  mkdirSync(o.out, { recursive: true })
  const work = join(tmpdir(), `mhe-gpu-bundles-${process.pid}`)
  const log = (m: string): void => void process.stderr.write(`[${Math.round((performance.now() - t0) / 1000)} s] ${m}\n`)
  const result = {
    scenario: 'gpu',
    title: `GPU check: ${o.backend} against wasm on the same machine (engine and HTTP)`,
    command: `bench/gpu/run.sh (node .gpu/bench/main.mjs --backend ${o.backend}${o.quick ? ' --quick' : ''})`,
    machine: machine(),
    gpu: '' as string,
    probe: (await probeAdapter()) ?? 'webgpu not installed',
    settings: { backend: o.backend, quick: o.quick, durationS: o.durationS, topK: TOP_K, answerRows: ANSWER_ROWS, logScoreTolerance: LOG_SCORE_TOLERANCE },
    engine: [] as Record<string, unknown>[],
    agreement: [] as Record<string, unknown>[],
    http: [] as Record<string, unknown>[],
    checks: [] as { name: string; pass: boolean; value: string }[],
    notes: [] as string[],
    elapsedS: 0,
  }
  try {
    const smi = spawn('nvidia-smi', ['-L'], { stdio: ['ignore', 'pipe', 'ignore'] })
    smi.stdout.on('data', (b: Buffer) => (result.gpu += b.toString().trim()))
    await new Promise((r) => smi.on('close', r).on('error', r))
  } catch {
    // no nvidia-smi: a CPU machine (the dry run)
  }
  const save = (): void => {
    result.elapsedS = round((performance.now() - t0) / 1000, 1)
    writeFileSync(join(o.out, 'gpu.json'), JSON.stringify(result, null, 2) + '\n')
    const md =
      `# ${result.title}\n\nGPU: ${result.gpu || 'none'}; probe: ${JSON.stringify(result.probe)}\n\n` +
      `## Engine: ms per batch (median), in-process, read-back included\n\n${table(result.engine)}\n` +
      `## Answers: ${o.backend} vs wasm, ${ANSWER_ROWS} instances, top-${TOP_K}, log-score tolerance ${LOG_SCORE_TOLERANCE}\n\n${table(result.agreement)}\n` +
      `## HTTP: POST /predict, one instance per request (JSON)\n\n${table(result.http)}\n` +
      `## Checks\n\n${table(result.checks)}\n## Notes\n\n${result.notes.map((n) => `- ${n}`).join('\n')}\n`
    writeFileSync(join(o.out, 'gpu.md'), md)
  }
  const check = (name: string, pass: boolean, value: string): void => {
    result.checks.push({ name, pass, value })
    log(`${pass ? 'PASS' : 'FAIL'} ${name}: ${value}`)
  }
  const agree = (what: string, a: Agreement): void => {
    result.agreement.push({ what, instances: a.instances, labels: a.labels, nearTies: a.nearTies, mismatches: a.mismatches, maxAbsLogScoreDiff: a.maxAbsLogScoreDiff.toExponential(2), examples: a.examples.join('; ') })
    check(`${what}: same answers as wasm`, a.mismatches === 0 && a.labels > 0, `${a.mismatches} mismatches, ${a.nearTies} near-ties, max |Δ log-score| ${a.maxAbsLogScoreDiff.toExponential(2)}`)
  }

  // Bundles: written here (the GPU machine has no copy of them), on the cpu backend (weights are only copied).
  await tf.setBackend('cpu')
  const d = o.quick ? 64 : 768
  const mheHeads = o.quick ? [10, 10, 10] : [100, 100, 100]
  const oheC = o.quick ? 1000 : 100_000
  const bundles: BundleSpec[] = []
  for (const [name, heads] of [['MHE', mheHeads], ['OHE', [oheC]]] as const) {
    const dir = join(work, name)
    const numLabels = heads.reduce((a, n) => a * n, 1)
    await writeBenchModel({ dim: d, heads: [...heads], numLabels, seed: 1, name: `gpu-${name}`, out: dir })
    bundles.push({ name: `${name} d=${d} heads ${heads.join('x')}`, dir, dim: d, heads: [...heads], numLabels })
  }
  const demo = JSON.parse(readFileSync(join(ROOT, 'models/demo/mhe.json'), 'utf8')) as { featureDim: number; heads: number[]; numLabels: number }
  bundles.push({ name: `demo d=${demo.featureDim} heads ${demo.heads.join('x')}`, dir: join(ROOT, 'models/demo'), dim: demo.featureDim, heads: demo.heads, numLabels: demo.numLabels })
  log(`bundles ready in ${work}`)

  // 1. Engine, in a child process per bundle and backend.
  const batches = o.quick ? [1, 32, 256] : [1, 32, 256, 4096]
  const budgetMs = o.quick ? 300 : 1000
  const backends = ['wasm', o.backend]
  let targetBroken = false
  for (const b of bundles) {
    const runs = new Map<string, EngineRun>()
    for (const backend of backends) {
      if (left() < 60 || (backend === o.backend && targetBroken)) {
        result.notes.push(`engine ${backend} on ${b.name}: skipped (${left() < 60 ? 'deadline' : `an earlier failure of ${o.backend}`})`)
        continue
      }
      try {
        const r = await runEngine(b.dir, backend, batches, budgetMs, Math.min(180, left() - 30) * 1000)
        runs.set(backend, r)
        for (const x of r.batches) {
          result.engine.push({ bundle: b.name, backend: r.backend, device: r.device ?? '', batch: x.batch, msPerBatch: round(x.msMedian, 3), msMin: round(x.msMin, 3), reps: x.reps, readyMs: round(r.readyMs, 0) })
        }
        if (r.skipped.length > 0) result.notes.push(`engine ${r.backend} on ${b.name}: batches of ${r.skipped.join(', ')} not timed (over ${CPU_MAX_MULTIPLY_ADDS} multiply-adds on a CPU backend)`)
        log(`engine ${backend} on ${b.name}: ${r.batches.map((x) => `${x.batch}: ${round(x.msMedian, 2)} ms`).join(', ')}`)
      } catch (err) {
        const message = (err as Error).message
        // A Dawn error, or no usable adapter at all: the backend under test is out for every later step.
        if (backend === o.backend && (DAWN_ERROR.test(message) || NO_BACKEND.test(message))) targetBroken = true
        check(`engine ${backend} on ${b.name} runs`, false, message.slice(0, 600))
      }
      save()
    }
    const [ref, got] = [runs.get('wasm'), runs.get(o.backend)]
    if (ref && got) agree(`engine, ${b.name}`, compareAnswers(ref.answers, got.answers))
    if (got && o.backend === 'webgpu') check(`engine on ${b.name} ran on a GPU`, got.backend === 'webgpu' && got.gpu, `${got.backend} on ${got.device ?? '?'}`)
  }
  save()

  // 2. The server, on wasm, on the backend under test, and on it with the CPU batching defaults.
  // Distinct names also when the dry run tests wasm against itself.
  const tested = o.backend === 'wasm' ? 'wasm (as tested)' : o.backend
  const variants: { name: string; env: Record<string, string> }[] = [
    { name: 'wasm', env: { MHE_BACKEND: 'wasm' } },
    { name: tested, env: { MHE_BACKEND: o.backend } },
    { name: `${tested}, CPU batching`, env: { MHE_BACKEND: o.backend, MHE_MAX_BATCH: '256', MHE_MAX_DELAY_MS: '0' } },
  ]
  for (const b of bundles.filter((x) => x.name.startsWith('MHE') || x.name.startsWith('demo') || !o.quick)) {
    if (left() < 40) {
      result.notes.push(`HTTP on ${b.name}: skipped (deadline)`)
      continue
    }
    const servers = new Map<string, Running>()
    try {
      for (const v of variants) {
        if (v.name !== 'wasm' && targetBroken) continue
        try {
          servers.set(v.name, await startServer({ env: { MHE_MODEL: b.dir, MHE_WORKERS: '1', LOG_LEVEL: 'info', ...v.env } }))
        } catch (err) {
          check(`server ${v.name} on ${b.name} starts`, false, (err as Error).message.slice(-800))
        }
      }
      const wasm = servers.get('wasm')
      const target = servers.get(tested)
      if (target) {
        const info = (await (await fetch(`${target.url}/model`)).json()) as { backend: string; batching: object }
        check(`server on ${b.name} reports backend ${o.backend}`, info.backend === o.backend, `${info.backend}, batching ${JSON.stringify(info.batching)}`)
      }
      if (wasm && target) agree(`HTTP /predict (binary body), ${b.name}`, compareAnswers(await serverAnswers(wasm.url, b.dim), await serverAnswers(target.url, b.dim)))
      if (!target) {
        result.notes.push(`HTTP load on ${b.name}: skipped (no server on ${o.backend} to compare with)`)
        continue
      }
      const body = jsonBody(1, b.dim)
      for (const c of [64, 256]) {
        for (const [name, s] of servers) {
          if (left() < 15) {
            result.notes.push(`HTTP ${name} c=${c} on ${b.name}: skipped (deadline)`)
            continue
          }
          const m0 = await batchMetrics(s.url)
          const r = await load({ url: `${s.url}/predict`, connections: c, durationS: o.durationS, body, contentType: 'application/json', serverCpuMs: s.cpuMs })
          const m1 = await batchMetrics(s.url)
          const info = (await (await fetch(`${s.url}/model`)).json()) as { batching: { maxBatch: number; maxDelayMs: number } }
          result.http.push({
            bundle: b.name,
            server: name,
            maxBatch: info.batching.maxBatch,
            maxDelayMs: info.batching.maxDelayMs,
            connections: c,
            reqPerSec: round(r.reqPerSec, 0),
            meanBatch: round((m1.batchSum - m0.batchSum) / (m1.batchCount - m0.batchCount), 1),
            p50Ms: round(r.p50Ms),
            p99Ms: round(r.p99Ms),
            serverCores: round(r.serverCores),
            errors: r.errors + r.timeouts + r.non2xx,
          })
          log(`HTTP ${name} on ${b.name} c=${c}: ${round(r.reqPerSec, 0)} req/s, p99 ${round(r.p99Ms)} ms`)
          if (DAWN_ERROR.test(s.output())) {
            targetBroken = true
            check(`server ${name} on ${b.name}: no Dawn error`, false, s.output().slice(-800))
          }
          save()
        }
      }
      for (const row of result.http.filter((x) => x.bundle === b.name)) {
        if (row.errors !== 0) check(`HTTP ${row.server} on ${b.name} c=${row.connections}: no errors`, false, `${row.errors} errors`)
      }
    } catch (err) {
      check(`HTTP on ${b.name}`, false, ((err as Error).stack ?? String(err)).slice(0, 800))
    } finally {
      for (const [name, s] of servers) {
        const code = await s.stop()
        if (code !== 0) {
          writeFileSync(join(o.out, `server-${name.replace(/\W+/g, '-')}.log`), s.output().slice(-50_000))
          check(`server ${name} on ${b.name} stops cleanly`, false, `exit ${code}`)
        }
      }
    }
  }
  rmSync(work, { recursive: true, force: true })
  save()
  const failed = result.checks.filter((c) => !c.pass).length
  log(`${result.checks.length - failed} checks passed, ${failed} failed; results in ${o.out}`)
  return failed === 0 ? 0 : 1
}

const argv = process.argv.slice(2)
if (argv[0] === '--engine') {
  const [dir, backend, batches, budget] = argv.slice(1)
  await engineChild(dir!, backend!, batches!.split(',').map(Number), Number(budget))
} else {
  process.exitCode = await main(options(argv))
}
