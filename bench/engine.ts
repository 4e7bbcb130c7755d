// Engine: MHE heads against the one-head OHE bundle of the same C and d=768, at C = 10^4, 10^5, 3x10^5 (the
// largest OHE that fits) and 10^6 (MHE only): time per batch of 256, weight bytes, RSS, speed-up vs FLOP ratio.
// Each measurement runs in its own process (bench/engine-worker.ts) so RSS and load time are its own.

import { execFileSync } from 'node:child_process'
import { ROOT } from './lib/server.js'
import { benchBundle } from './lib/bundles.js'
import { outputWidth } from '../src/mhe/codec.js'
import { isMain, round, scenario, type ScenarioResult } from './lib/result.js'

interface Measured {
  heads: number[]
  numLabels: number
  backend: string
  /** The vectors of the native Dense kernel where the engine ran on it, else false (the wasm kernel). */
  nativeDense: string | false
  readyMs: number
  msPerBatch: number
  cpuMsPerBatch: number
  weightBytes: number
  rssMb: number
}

export function measure(dir: string, backend: string, batch: number, reps: number, extra: string[] = []): Measured {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/engine-worker.ts', dir, backend, String(batch), String(reps), ...extra], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  })
  return JSON.parse(out.trim().split('\n').pop()!) as Measured
}

const D = 768
const BATCH = 256
const CASES: { c: number; mhe: number[]; oheReps: number }[] = [
  { c: 1e4, mhe: [100, 100], oheReps: 5 },
  { c: 1e5, mhe: [100, 100, 10], oheReps: 3 },
  { c: 3e5, mhe: [100, 100, 30], oheReps: 1 },
  { c: 1e6, mhe: [100, 100, 100], oheReps: 0 },
]

export async function run(): Promise<ScenarioResult> {
  return scenario('engine', 'Engine: MHE heads vs one-head OHE, d=768, batch of 256, wasm, in-process', async (r) => {
    r.settings = { ...r.settings, featureDim: D, batch: BATCH, backend: 'wasm', mheReps: 30 }
    const row = (kind: string, m: Measured) => ({
      kind,
      C: m.numLabels,
      heads: m.heads.length > 3 || m.heads[0]! > 1000 ? `[${m.heads[0]}]` : m.heads.join('x'),
      msPerBatch: round(m.msPerBatch),
      cpuMsPerBatch: round(m.cpuMsPerBatch),
      weightMB: round(m.weightBytes / 1e6, 1),
      rssMb: round(m.rssMb, 0),
      readyMs: round(m.readyMs, 0),
    })
    for (const { c, mhe, oheReps } of CASES) {
      const m = measure(benchBundle(D, mhe).dir, 'wasm', BATCH, 30)
      const sum = outputWidth(mhe)
      const flopRatio = c / sum
      const mheRow = row('MHE', m)
      // As shipped: MHE's narrow heads on the native Dense kernel where it is built; OHE's wide output on the backend.
      if (c === CASES[0]!.c) r.settings = { ...r.settings, mheDenseKernel: m.nativeDense === false ? 'wasm' : `native (${m.nativeDense})` }
      if (oheReps === 0) {
        r.rows.push({ ...mheRow, flopRatio: round(flopRatio, 0) })
        r.notes.push(
          `C=${c}: no OHE bundle. Its weights alone are ${(((D + 1) * c * 4) / 1e9).toFixed(2)} GB of float32, and one batch of 256 ` +
            `logits another ${((BATCH * c * 4) / 1e9).toFixed(2)} GB: more than the 4 GB a wasm32 heap can address (bench:model also ` +
            'caps weights at 1 GiB). The largest OHE measured here is C=3x10^5 (0.92 GB of weights).',
        )
        continue
      }
      const o = measure(benchBundle(D, [c]).dir, 'wasm', BATCH, oheReps)
      const speedUp = o.cpuMsPerBatch / m.cpuMsPerBatch
      r.rows.push({ ...mheRow, flopRatio: round(flopRatio, 0) }, { ...row('OHE', o), speedUpCpu: round(speedUp, 0), speedUpWall: round(o.msPerBatch / m.msPerBatch, 0), flopRatio: round(flopRatio, 0) })
      if (c === 1e5) {
        r.checks.push({
          name: 'engine speed-up at C=10^5 (CPU time per batch of 256)',
          target: `>= FLOP ratio / 2 = ${round(flopRatio / 2, 0)}x`,
          value: `${round(speedUp, 0)}x`,
          pass: speedUp >= flopRatio / 2,
        })
      }
    }
    // Before/after of the engine change: the same MHE bundle with everything on the backend.
    const big = benchBundle(D, [100, 100, 100]).dir
    for (const n of [1, 64, 256]) {
      const reps = n === 1 ? 200 : 30
      const after = measure(big, 'wasm', n, reps)
      const before = measure(big, 'wasm', n, reps, ['--kernel-path'])
      r.rows.push({
        kind: `engine path, batch ${n}`,
        C: 1e6,
        heads: '100x100x100',
        backendPathCpuMs: round(before.cpuMsPerBatch, 3),
        jsPathCpuMs: round(after.cpuMsPerBatch, 3),
        gain: round(before.cpuMsPerBatch / after.cpuMsPerBatch, 2),
      })
    }
  })
}

if (isMain(import.meta.url)) await run()
