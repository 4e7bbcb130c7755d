// The safetensors importer: finding the classifier, the bundle it writes (checked by running the model),
// every error case with its message, and the CLI run as a user runs it.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import { loadBundle } from '../../src/engine/model-load.js'
import { importSafetensors, type ImportOptions } from '../../tools/import/import.js'
import { parseCli } from '../../tools/import/cli.js'
import { buildSafetensors, f32, mhpTensors, u16Bytes, type RawTensor } from '../helpers/safetensors.js'
import { childEnv } from '../helpers/process.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HEADS = [4, 3] // Σ = 7, product 12
const C = 10
const D = 6

let tmp = ''
t.before(async () => {
  tf.env().set('PROD', true) // no "install tfjs-node" banner in the test log
  await tf.setBackend('cpu')
  tmp = await mkdtemp(join(tmpdir(), 'mhe-import-'))
})
t.teardown(() => rm(tmp, { recursive: true, force: true }))

let seq = 0
/** Writes a safetensors file + labels file and returns options pointing at them and at a fresh output folder. */
async function setup(file: Uint8Array, over: Partial<ImportOptions> = {}, numLabelLines = C): Promise<ImportOptions> {
  const dir = join(tmp, `case${++seq}`)
  await mkdir(dir)
  await writeFile(join(dir, 'm.safetensors'), file)
  await writeFile(join(dir, 'labels.txt'), Array.from({ length: numLabelLines }, (_, i) => `name ${i}\n`).join(''))
  return { safetensors: join(dir, 'm.safetensors'), labels: join(dir, 'labels.txt'), out: join(dir, 'bundle'), heads: HEADS, numLabels: C, ...over }
}

t.test('imports fc.weight/fc.bias from a state_dict and the bundle computes x W^T + b', async (t) => {
  const { tensors, weight, bias } = mhpTensors(HEADS, D, 3)
  const opts = await setup(buildSafetensors(tensors, { metadata: { format: 'pt' } }), { name: 'tiny', version: '2.1' })
  const res = await importSafetensors(opts)
  t.same([res.weight, res.bias, res.dtype], ['fc.weight', 'fc.bias', 'F32'])
  t.match(res.manifest, { format: 1, name: 'tiny', version: '2.1', featureDim: D, heads: HEADS, numLabels: C, outputs: 'logits' })
  const written = JSON.parse(await readFile(join(opts.out, 'mhe.json'), 'utf8')) as Record<string, unknown>
  t.match(written, { training: { importedFrom: { format: 'safetensors', file: 'm.safetensors', weight: 'fc.weight', bias: 'fc.bias', dtype: 'F32', metadata: { format: 'pt' } } } })
  t.equal((await readFile(join(opts.out, 'labels.txt'), 'utf8')).split('\n')[3], 'name 3')

  const bundle = await loadBundle(opts.out)
  t.teardown(() => bundle.model.dispose())
  t.equal(bundle.layout, 'concat')
  const x = Float32Array.from({ length: 3 * D }, (_, i) => Math.sin(i + 1))
  const y = tf.tidy(() => (bundle.model as tf.LayersModel).predict(tf.tensor2d(x, [3, D])) as tf.Tensor).dataSync()
  const total = HEADS.reduce((a, n) => a + n, 0)
  let worst = 0
  for (let r = 0; r < 3; r++) {
    for (let j = 0; j < total; j++) {
      let want = bias[j]!
      for (let d = 0; d < D; d++) want += x[r * D + d]! * weight[j * D + d]!
      worst = Math.max(worst, Math.abs(y[r * total + j]! - want))
    }
  }
  t.ok(worst < 1e-5, `model output = x W^T + b (PyTorch's Linear), max error ${worst}`)
})

t.test('finds the pair: same prefix wins, a lone unprefixed pair is taken, --weight/--bias override', async (t) => {
  const w = (name: string, rows = 7): RawTensor => f32(name, [rows, D], new Float32Array(rows * D).fill(0.5))
  const b = (name: string, n = 7): RawTensor => f32(name, [n], new Float32Array(n).fill(0.1))
  let res = await importSafetensors(await setup(buildSafetensors([w('a.weight'), w('z.weight'), b('a.bias')])))
  t.same([res.weight, res.bias], ['a.weight', 'a.bias'], 'the weight whose prefix matches the only bias')
  res = await importSafetensors(await setup(buildSafetensors([w('W'), b('b'), w('enc', 9), b('enc_b', 9)])))
  t.same([res.weight, res.bias], ['W', 'b'], 'one fitting pair without a common prefix')
  res = await importSafetensors(await setup(buildSafetensors([w('fc.weight'), b('fc.bias'), w('fc2.weight'), b('fc2.bias')]), { weight: 'fc2.weight', bias: 'fc2.bias' }))
  t.same([res.weight, res.bias], ['fc2.weight', 'fc2.bias'], 'named pair')
  const ds = await importSafetensors(await setup(buildSafetensors([
    { name: 'fc.weight', dtype: 'BF16', shape: [7, D], bytes: u16Bytes(new Array(7 * D).fill(0x3f80)) },
    { name: 'fc.bias', dtype: 'F16', shape: [7], bytes: u16Bytes(new Array(7).fill(0x3c00)) },
  ])))
  t.equal(ds.dtype, 'BF16/F16', 'mixed dtypes are reported')
})

/** Error cases: each must fail with a message that names the tensor / file and the shapes. */
t.test('error cases', async (t) => {
  const { tensors } = mhpTensors(HEADS, D, 5)
  const good = buildSafetensors(tensors)
  const cases: [string, () => Promise<ImportOptions>, RegExp][] = [
    ['wrong weight shape', () => setup(good, { weight: 'encoder.weight', bias: 'fc.bias' }),
      /tensor "encoder.weight" has shape \[6, 5\], expected \[7, D\] \(Σn_h of heads 4,3 = 7\)/],
    ['wrong bias shape', () => setup(good, { weight: 'fc.weight', bias: 'encoder.bias' }),
      /tensor "encoder.bias" has shape \[6\], expected \[7\] to match "fc.weight" \[7, 6\]/],
    ['transposed weight', () => setup(buildSafetensors([f32('fc.weight', [D, 7], new Float32Array(42)), f32('fc.bias', [7], new Float32Array(7))]), { weight: 'fc.weight', bias: 'fc.bias' }),
      /tensor "fc.weight" has shape \[6, 7\], expected \[7, D\].*looks transposed/],
    ['missing tensor', () => setup(good, { weight: 'classifier.weight', bias: 'classifier.bias' }),
      /missing tensor "classifier.weight" \(--weight\); tensors in the file: "encoder.weight" \[6, 5\] F32, .*"fc.weight" \[7, 6\] F32/],
    ['only --weight', () => setup(good, { weight: 'fc.weight' }), /give both --weight and --bias, or neither/],
    ['no pair fits the heads', () => setup(good, { heads: [5, 3] }),
      /no classifier found for heads 5,3: no 2-D weight \[8, D\] \(Σn_h of heads 5,3 = 8\); tensors in the file: .*"fc.weight" \[7, 6\] F32.*--weight NAME --bias NAME/],
    ['weight but no bias', () => setup(buildSafetensors([f32('fc.weight', [7, D], new Float32Array(42))])), /no 1-D bias \[7\]; tensors in the file: "fc.weight" \[7, 6\] F32/],
    ['ambiguous: two fitting pairs', () => setup(buildSafetensors([...tensors, f32('head2.weight', [7, 4], new Float32Array(28)), f32('head2.bias', [7], new Float32Array(7))])),
      /2 \(weight, bias\) pairs fit heads 4,3 .*"fc.weight" \[7, 6\] F32 \+ "fc.bias" \[7\] F32; "head2.weight" \[7, 4\] F32 \+ "head2.bias" \[7\] F32\. Choose one with --weight NAME --bias NAME/],
    ['ambiguous: unprefixed', () => setup(buildSafetensors([f32('w1', [7, D], new Float32Array(42)), f32('w2', [7, D], new Float32Array(42)), f32('b', [7], new Float32Array(7))])),
      /2 \(weight, bias\) pairs fit/],
    ['truncated file', () => setup(good.subarray(0, good.byteLength - 10)), /m\.safetensors: truncated file: tensor "fc.bias" needs bytes \[312, 340\) of the data section, which has only 338 bytes/],
    ['header length past the end', () => setup(buildSafetensors(tensors, { headerLength: BigInt(good.byteLength) })),
      /m\.safetensors: header length \d+ goes past the end of the file/],
    ['header lies about offsets', () => setup(buildSafetensors(tensors, {
      header: (h) => ({ ...h, 'fc.bias': { dtype: 'F32', shape: [7], data_offsets: [0, 28] } }),
    })), /overlap in the data section/],
    ['header lies about a shape', () => setup(buildSafetensors(tensors, {
      header: (h) => ({ ...h, 'fc.weight': { ...(h['fc.weight'] as object), shape: [7, 7] } }),
    })), /tensor "fc.weight": data_offsets \[\d+, \d+\] hold 168 bytes, but dtype F32 x shape \[7, 7\] needs 196/],
    ['header not JSON', () => setup(Buffer.concat([Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a": nul}')])), /header is not valid JSON/],
    ['unsupported dtype', () => setup(buildSafetensors([{ name: 'fc.weight', dtype: 'F64', shape: [7, D], bytes: new Uint8Array(7 * D * 8) }, f32('fc.bias', [7], new Float32Array(7))])),
      /tensor "fc.weight" has dtype F64; supported: F32, F16, BF16/],
    ['non-finite weight', () => setup(buildSafetensors([f32('fc.weight', [7, D], new Float32Array(42).fill(NaN, 13, 14)), f32('fc.bias', [7], new Float32Array(7))])),
      /tensor "fc.weight" holds a non-finite value \(NaN\) at flat index 13/],
    ['label count mismatch', () => setup(good, {}, C - 1), /labels\.txt: 9 labels \(one per line\), but --num-labels is 10/],
    ['heads not covering num-labels', () => setup(good, { numLabels: 13 }, 13), /heads 4,3 cover 12 label ids \(their product\), fewer than --num-labels 13/],
    ['head of size 1', () => setup(good, { heads: [6, 1] }), /every head must have at least 2 outputs/],
    ['missing safetensors file', async () => ({ ...(await setup(good)), safetensors: join(tmp, 'nope.safetensors') }), /nope\.safetensors: cannot read the safetensors file \(ENOENT\)/],
    ['missing labels file', async () => ({ ...(await setup(good)), labels: join(tmp, 'nope.txt') }), /nope\.txt: cannot read the labels file \(ENOENT\)/],
  ]
  for (const [name, make, pattern] of cases) {
    const opts = await make()
    await t.rejects(importSafetensors(opts), pattern, name)
  }

  const withEmpty = await setup(good)
  await writeFile(withEmpty.labels, 'a\nb\n\nd\ne\nf\ng\nh\ni\nj\n')
  await t.rejects(importSafetensors(withEmpty), /labels\.txt: line 3 \(label id 2\) is empty/, 'empty label line')

  const busy = await setup(good)
  await mkdir(busy.out)
  await writeFile(join(busy.out, 'keep.txt'), 'x')
  await t.rejects(importSafetensors(busy), /bundle: output folder is not empty \(use --force to write into it\)/, 'non-empty --out')
  await t.resolves(importSafetensors({ ...busy, force: true }), '--force writes into it')
  t.equal(await readFile(join(busy.out, 'keep.txt'), 'utf8'), 'x', 'other files are left alone')
})

t.test('command line parsing', async (t) => {
  const base = ['--safetensors', 'a.st', '--heads', '7,6,5', '--num-labels', '200', '--labels', 'l.txt', '--out', 'o']
  t.match(parseCli(base, '/x'), { safetensors: '/x/a.st', heads: [7, 6, 5], numLabels: 200, labels: '/x/l.txt', out: '/x/o' })
  t.throws(() => parseCli(base.slice(2), '/x'), /missing --safetensors/)
  t.throws(() => parseCli([...base, '--heads', '7,x'], '/x'), /--heads expects a positive integer, got "x"/)
  t.throws(() => parseCli([...base, '--num-labels', '0'], '/x'), /--num-labels expects a positive integer, got "0"/)
  t.throws(() => parseCli([...base, '--bogus'], '/x'), /Unknown option '--bogus'/)
  t.equal(parseCli(['--help']), 'help')
})

const run = (cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, stdout, stderr }))
  })

t.test('the CLI process: exit codes and messages', async (t) => {
  const tsx = join(ROOT, 'node_modules', '.bin', 'tsx')
  const cli = join(ROOT, 'tools', 'import', 'cli.ts')
  const opts = await setup(buildSafetensors(mhpTensors(HEADS, D).tensors))
  const args = ['--safetensors', opts.safetensors, '--heads', '4,3', '--num-labels', '10', '--labels', opts.labels, '--out', opts.out]
  const bad = await run(tsx, [cli, ...args.slice(0, -4), '--labels', opts.labels, '--num-labels', '11', '--out', opts.out], ROOT)
  t.equal(bad.code, 1, 'import error: exit 1')
  t.match(bad.stderr, /^error: .*labels\.txt: 10 labels \(one per line\), but --num-labels is 11\n$/)
  t.notMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace for a user error')
  const usage = await run(tsx, [cli, '--heads', '4,3'], ROOT)
  t.equal(usage.code, 2, 'usage error: exit 2')
  t.match(usage.stderr, /error: missing --safetensors\n\nusage: npm run import/)
})
