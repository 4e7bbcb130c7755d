// bench:model: argument checks, and the bundle it writes loads and serves through the real engine.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { selectBackend } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine } from '../../src/engine/engine.js'
import { childEnv } from '../helpers/process.js'
import { parseArgs, writeBenchModel } from '../../tools/bench-model.js'

const root = t.testdir({})
const project = fileURLToPath(new URL('../..', import.meta.url))

t.test('argument parsing', async (t) => {
  t.match(parseArgs(['--dim', '16', '--heads', '4,5,6', '--out', 'x']), {
    dim: 16,
    heads: [4, 5, 6],
    numLabels: 120,
    seed: 1,
    name: 'bench-d16-h4x5x6',
    out: 'x',
  })
  t.match(parseArgs(['--dim=8', '--heads=10', '--num-labels=7', '--seed=3', '--name=n', '--out=o']), {
    dim: 8,
    heads: [10],
    numLabels: 7,
    seed: 3,
    name: 'n',
  })
  const bad: [string[], RegExp][] = [
    [['--heads', '4,5', '--out', 'x'], /--dim is required/],
    [['--dim', '8', '--out', 'x'], /--heads is required/],
    [['--dim', '8', '--heads', '4,5'], /--out is required/],
    [['--dim', '0', '--heads', '4', '--out', 'x'], /--dim must be a positive integer, got "0"/],
    [['--dim', '8', '--heads', '4,x', '--out', 'x'], /--heads must be a positive integer, got "x"/],
    [['--dim', '8', '--heads', '4,1', '--out', 'x'], /every head needs at least 2 outputs/],
    [['--dim', '8', '--heads', '4,5', '--num-labels', '21', '--out', 'x'], /--num-labels 21 is more than the heads cover \(4x5 = 20\)/],
    [['--dim', '8', '--heads', '4', '--out'], /--out needs a value/],
    [['--dim', '8', '--heads', '4', '--bogus', 'x'], /unknown argument "--bogus"/],
    [['--dim', '768', '--heads', '1000000', '--out', 'x'], /768000000 weights \(2930 MiB as float32\), more than/],
  ]
  for (const [argv, re] of bad) t.throws(() => parseArgs(argv), re, argv.join(' '))
  t.throws(() => parseArgs([]), /usage: npm run bench:model/)
})

t.test('the written bundle loads and predicts', async (t) => {
  const choice = await selectBackend('wasm', { info() {}, warn() {} })
  const out = join(root, 'small')
  const m = await writeBenchModel(parseArgs(['--dim', '12', '--heads', '5,4,3', '--num-labels', '50', '--seed', '7', '--out', out]))
  t.match(m, { featureDim: 12, heads: [5, 4, 3], numLabels: 50, outputs: 'logits' })
  const bundle = await loadBundle(out)
  t.equal(bundle.layout, 'concat', 'one Dense of Σn_h units')
  t.equal(bundle.labels.name(0), 'label-0')
  t.equal(bundle.labels.name(49), 'label-49')
  const e = await Engine.create(bundle, choice.name)
  t.teardown(() => e.dispose())
  const x = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i))
  const res = await e.predict(x, 2, [5, 5])
  t.equal(res.length, 2)
  t.ok(res.every((r) => r.length === 5 && r.every((c) => c.id < 50 && Number.isFinite(c.logScore))))
  t.not(res[0]![0]!.id === res[1]![0]!.id && res[0]![1]!.id === res[1]![1]!.id, true, 'different inputs rank differently')

  // Same seed, same weights; another seed, other weights.
  const again = join(root, 'again')
  const other = join(root, 'other')
  await writeBenchModel(parseArgs(['--dim', '12', '--heads', '5,4,3', '--num-labels', '50', '--seed', '7', '--out', again]))
  await writeBenchModel(parseArgs(['--dim', '12', '--heads', '5,4,3', '--num-labels', '50', '--seed', '8', '--out', other]))
  const w = (dir: string) => readFile(join(dir, 'weights.bin'))
  t.ok((await w(out)).equals(await w(again)), 'seeded: same seed, same bytes')
  t.notOk((await w(out)).equals(await w(other)), 'another seed, other bytes')
})

/** Runs the tool as `npm run bench:model` does (tsx), resolving with its exit status and output. */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(join(project, 'node_modules', '.bin', 'tsx'), ['tools/bench-model.ts', ...args], { cwd: project, env: childEnv() })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.on('close', (status) => done({ status, stdout, stderr }))
  })
}

t.test('the npm script entry point', async (t) => {
  const out = join(root, 'cli')
  // Both at once: tsx start-up dominates and the machine is shared.
  const [ok, bad] = await Promise.all([
    run(['--dim', '4', '--heads', '3,3', '--num-labels', '8', '--out', out]),
    run(['--dim', '4']),
  ])
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /wrote .*cli: featureDim 4, heads 3x3 \(6 outputs\), numLabels 8/)
  t.equal((await readFile(join(out, 'labels.txt'), 'utf8')).split('\n').length, 9, '8 labels + final newline')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^bench:model: --heads is required\nusage:/)
})
