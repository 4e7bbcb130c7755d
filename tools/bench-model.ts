// `npm run bench:model -- --dim D --heads n1,n2,... [--num-labels C] [--seed S] [--name N] --out DIR`:
// writes a heads-only bundle (one Dense layer of Σn_h units, seeded random weights, labels label-<id>) for benchmarks.

import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import { writeBundle } from './bundle/write.js'
import type { Manifest } from '../src/bundle/manifest.js'
import { idSpace, outputWidth } from '../src/mhe/codec.js'
import { mulberry32 } from './lib/rng.js'

export interface BenchModelOptions {
  dim: number
  heads: number[]
  numLabels: number
  seed: number
  name: string
  out: string
}

const USAGE =
  'usage: npm run bench:model -- --dim D --heads n1,n2,... [--num-labels C] [--seed S] [--name N] --out DIR'
// tfjs keeps a tensor in one typed array and saving copies it again: cap at 1 GiB of float32 weights.
const MAX_WEIGHTS = 2 ** 28

export class UsageError extends Error {
  constructor(message: string) {
    super(`${message}\n${USAGE}`)
    this.name = 'UsageError'
  }
}

function positiveInt(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(v)}`)
  }
  return Number(v)
}

export function parseArgs(argv: readonly string[]): BenchModelOptions {
  const raw = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const m = /^--(dim|heads|num-labels|seed|name|out)(?:=(.*))?$/.exec(arg)
    if (m === null) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`)
    const value = m[2] ?? argv[++i]
    if (value === undefined || (m[2] === undefined && value.startsWith('--'))) throw new UsageError(`--${m[1]} needs a value`)
    raw.set(m[1]!, value)
  }
  const need = (k: string) => {
    const v = raw.get(k)
    if (v === undefined) throw new UsageError(`--${k} is required`)
    return v
  }
  const dim = positiveInt('--dim', need('dim'))
  const heads = need('heads')
    .split(',')
    .map((s) => positiveInt('--heads', s.trim()))
  if (heads.length > 1 && heads.some((n) => n < 2)) throw new UsageError(`--heads: every head needs at least 2 outputs, got ${heads.join(',')}`)
  const product = idSpace(heads)
  if (!Number.isSafeInteger(product)) throw new UsageError(`--heads ${heads.join(',')}: the product exceeds 2^53`)
  const numLabels = raw.has('num-labels') ? positiveInt('--num-labels', raw.get('num-labels')!) : product
  if (numLabels > product) throw new UsageError(`--num-labels ${numLabels} is more than the heads cover (${heads.join('x')} = ${product})`)
  const sum = outputWidth(heads)
  if (dim * sum > MAX_WEIGHTS) {
    throw new UsageError(
      `--dim ${dim} x ${sum} outputs = ${dim * sum} weights (${Math.round((dim * sum * 4) / 2 ** 20)} MiB as float32), ` +
        `more than the ${MAX_WEIGHTS} (1 GiB) this tool writes`,
    )
  }
  const seed = raw.has('seed') ? Number(raw.get('seed')) : 1
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${JSON.stringify(raw.get('seed'))}`)
  const name = raw.get('name') ?? `bench-d${dim}-h${heads.join('x')}`
  return { dim, heads, numLabels, seed, name, out: need('out') }
}

/** Seeded uniform floats in [-scale, scale). */
function fill(a: Float32Array, seed: number, scale: number): Float32Array {
  const next = mulberry32(seed)
  for (let i = 0; i < a.length; i++) a[i] = (next() * 2 - 1) * scale
  return a
}

/** Writes the bundle and returns its manifest, on whichever tfjs backend is active (weights are only copied). */
export async function writeBenchModel(o: BenchModelOptions): Promise<Manifest> {
  const sum = outputWidth(o.heads)
  const input = tf.input({ shape: [o.dim], name: 'features' })
  const dense = tf.layers.dense({ units: sum, name: 'heads' })
  const model = tf.model({ inputs: input, outputs: dense.apply(input) as tf.SymbolicTensor })
  try {
    // Glorot-like scale keeps logits of random unit-range features spread but finite.
    const scale = Math.sqrt(6 / (o.dim + sum))
    const w = [tf.tensor2d(fill(new Float32Array(o.dim * sum), o.seed, scale), [o.dim, sum]), tf.tensor1d(fill(new Float32Array(sum), o.seed + 1, 0.1))]
    dense.setWeights(w)
    tf.dispose(w)
    const labels = Array.from({ length: o.numLabels }, (_, i) => `label-${i}`)
    return await writeBundle(o.out, {
      manifest: {
        name: o.name,
        version: '1',
        description: `heads-only benchmark model: d=${o.dim}, heads ${o.heads.join('x')}, seed ${o.seed}`,
        featureDim: o.dim,
        heads: o.heads,
        numLabels: o.numLabels,
        outputs: 'logits',
      },
      model,
      labels,
    })
  } finally {
    model.dispose()
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: BenchModelOptions
  try {
    opts = parseArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`bench:model: ${err.message}\n`)
    return 2
  }
  tf.enableProdMode() // no "install the node backend" banner: nothing is computed here
  await tf.setBackend('cpu')
  const m = await writeBenchModel(opts)
  const sum = outputWidth(m.heads)
  process.stdout.write(
    `wrote ${opts.out}: featureDim ${m.featureDim}, heads ${m.heads.join('x')} (${sum} outputs), numLabels ${m.numLabels}, ` +
      `${((m.featureDim + 1) * sum * 4) / 1e6} MB of weights\n`,
  )
  return 0
}

const invoked = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
if (invoked) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench:model: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exit(1)
    },
  )
}
