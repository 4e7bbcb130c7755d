// Benchmark bundles, written once into bench/.cache by `npm run bench:model` (tools/bench-model.ts) and reused.

import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { MANIFEST_FILE } from '../../src/bundle/manifest.js'
import { idSpace } from '../../src/mhe/codec.js'
import { ROOT } from './server.js'

export interface BenchBundle {
  dir: string
  dim: number
  heads: number[]
  numLabels: number
}

/** Path of a heads-only bundle with these dims, made if missing. */
export function benchBundle(dim: number, heads: number[], numLabels = idSpace(heads)): BenchBundle {
  const dir = join(ROOT, 'bench/.cache', `d${dim}-h${heads.join('x')}-c${numLabels}`)
  if (!existsSync(join(dir, MANIFEST_FILE))) {
    const args = ['--dim', String(dim), '--heads', heads.join(','), '--num-labels', String(numLabels), '--out', dir]
    process.stderr.write(`making bundle ${dir}\n`)
    execFileSync(process.execPath, ['--import', 'tsx', 'tools/bench-model.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  }
  return { dir, dim, heads, numLabels }
}

/** Seeded features in [-1, 1): n rows of dim values. */
export function features(n: number, dim: number, seed = 7): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n * dim)
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = (s / 2 ** 32) * 2 - 1
  }
  return out
}

/** JSON body {"instances": [...]} for n instances (values rounded to 6 digits, as a client would send). */
export function jsonBody(n: number, dim: number, seed = 7): string {
  const f = features(n, dim, seed)
  const rows: number[][] = []
  for (let i = 0; i < n; i++) rows.push(Array.from(f.subarray(i * dim, (i + 1) * dim), (x) => Math.round(x * 1e6) / 1e6))
  return JSON.stringify({ instances: rows })
}

/** Raw little-endian float32 body for n instances. */
export function binaryBody(n: number, dim: number, seed = 7): Buffer {
  const f = features(n, dim, seed)
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength)
}
