// The README's "Bring your own model" section, followed verbatim: its `npm run import` line runs on the PyTorch
// fixture from a folder laid out like the repository root, and the bundle it writes serves PyTorch's answers.
import t from 'tap'
import { spawn } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { selectBackend } from '../../src/engine/backend.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { parseManifest } from '../../src/bundle/manifest.js'
import { Engine } from '../../src/engine/engine.js'
import { childEnv } from '../helpers/process.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FIX = join(ROOT, 'test', 'fixtures', 'pytorch')

/** The "Bring your own model" section of README.md. */
async function section(): Promise<{ file: string; text: string }> {
  const main = await readFile(join(ROOT, 'README.md'), 'utf8')
  const at = main.indexOf('## Bring your own model')
  if (at < 0) throw new Error('README.md has no "Bring your own model" section')
  const rest = main.slice(at)
  const next = rest.search(/\n## (?!#)/) // up to the next section of the same level
  return { file: 'README.md', text: next >= 0 ? rest.slice(0, next) : rest }
}

const codeLines = (text: string, lang: string): string[] =>
  [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].flatMap((m) => m[1]!.split('\n'))

const flag = (cmd: string, name: string): string => {
  const m = new RegExp(`--${name} (\\S+)`).exec(cmd)
  if (m === null) throw new Error(`the README command has no --${name}: ${cmd}`)
  return m[1]!
}

t.test('the README import command, run verbatim, writes a bundle that serves PyTorch\'s top-5', async (t) => {
  const { file, text } = await section()
  t.comment(`section from ${file}`)
  const imports = codeLines(text, 'sh').filter((l) => l.startsWith('npm run import -- '))
  t.equal(imports.length, 1, 'one `npm run import` command')
  const cmd = imports[0]!
  const serve = codeLines(text, 'sh').find((l) => /^MHE_MODEL=\S+ npm start$/.test(l))
  t.ok(serve, 'a `MHE_MODEL=DIR npm start` line')
  t.equal(serve?.split(/[= ]/)[1], flag(cmd, 'out'), 'it serves the folder the import wrote')

  const exp = JSON.parse(await readFile(join(FIX, 'expected.json'), 'utf8')) as {
    heads: number[]; numLabels: number; featureDim: number; n: number; k: number; variants: { f32: { ids: number[][] } }
  }
  t.equal(flag(cmd, 'heads'), exp.heads.join(','), 'the README example matches the fixture heads')
  t.equal(Number(flag(cmd, 'num-labels')), exp.numLabels)

  // A folder laid out like the repository root, holding the files the README names.
  const dir = await mkdtemp(join(tmpdir(), 'mhe-readme-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const name of ['package.json', 'node_modules', 'src', 'tools', 'tsconfig.json']) await symlink(join(ROOT, name), join(dir, name))
  await copyFile(join(FIX, 'mhp_f32.safetensors'), join(dir, flag(cmd, 'safetensors')))
  await copyFile(join(FIX, 'labels.txt'), join(dir, flag(cmd, 'labels')))

  const res = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const p = spawn('sh', ['-c', cmd], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (out += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out }))
  })
  t.equal(res.code, 0, `exit 0: ${res.out.trim().split('\n').at(-1) ?? ''}`)
  t.match(res.out, /wrote bundle .*featureDim 32, heads 7,6,5, numLabels 200 \(from fc\.weight \+ fc\.bias, F32\)/)

  const backend = await selectBackend('wasm', { info: () => {}, warn: () => {} })
  const bundle = await loadBundle(join(dir, flag(cmd, 'out')))
  t.match(bundle.manifest, { name: flag(cmd, 'name'), version: flag(cmd, 'version') })
  const raw = await readFile(join(FIX, 'features.f32'))
  const features = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))
  const engine = await Engine.create(bundle, backend.name)
  t.teardown(() => engine.dispose())
  const got = await engine.predict(features, exp.n, new Array<number>(exp.n).fill(exp.k))
  const mismatches = got.filter((cands, i) => cands.map((c) => c.id).join() !== exp.variants.f32.ids[i]!.join()).length
  t.equal(mismatches, 0, `PyTorch's top-${exp.k} for all ${exp.n} inputs`)
})

t.test('the README\'s mhe.json example for a converted Keras model is a valid manifest', async (t) => {
  const { text } = await section()
  const block = /```json\n([\s\S]*?)```/.exec(text)
  t.ok(block, 'a json block')
  t.doesNotThrow(() => parseManifest(JSON.parse(block![1]!), 'README mhe.json'))
  t.match(text, /tensorflowjs_converter --input_format=keras /, 'the converter command for Keras')
  t.match(text, /tfjs\.converters\.save_keras_model\(model, /)
})

t.test('the README\'s Python writer is the one the fixture script runs', async (t) => {
  const { text } = await section()
  const block = /```python\n(def save_safetensors[\s\S]*?)```/.exec(text)
  t.ok(block, 'a ```python block defining save_safetensors')
  const script = await readFile(join(FIX, 'make_fixture.py'), 'utf8')
  t.match(script, /exec\(readme_python_block\(\), ns\)/, 'make_fixture.py executes that block to write the fixtures')
  // Files it writes: header padded to 8 bytes with spaces, tensors in state_dict order.
  const st = await readFile(join(FIX, 'mhp_f32.safetensors'))
  const n = Number(st.readBigUInt64LE(0))
  const header = st.subarray(8, 8 + n).toString('utf8')
  t.equal(n % 8, 0, 'header length is a multiple of 8')
  t.same(Object.keys(JSON.parse(header) as object), ['steps', 'encoder.weight', 'encoder.bias', 'fc.weight', 'fc.bias'])
})
