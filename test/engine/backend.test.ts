// Backend selection: explicit wasm/cpu, 'auto' falling through the tensorflow packages and webgpu, and clear failures.
import t from 'tap'
import { existsSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../src/engine/backend.js'
import { probeAdapter } from '../../src/engine/webgpu.js'

const tfInstalled =
  existsSync(new URL('../../node_modules/@tensorflow/tfjs-node/package.json', import.meta.url)) ||
  existsSync(new URL('../../node_modules/@tensorflow/tfjs-node-gpu/package.json', import.meta.url))
const webgpuInstalled = existsSync(new URL('../../node_modules/webgpu/package.json', import.meta.url))
// On these CPU machines Dawn finds no adapter; a machine with a GPU would pick webgpu, so those tests skip there.
const gpuHere = (await probeAdapter())?.ok === true
// What the webgpu candidate says here: the package is missing, or Dawn has no (real) GPU adapter.
const webgpuSkipped = webgpuInstalled ? /^(no GPU adapter|only a (fallback|software))/ : /^webgpu is not installed$/

function recorder() {
  const lines: { level: string; o: object; m: string }[] = []
  return {
    lines,
    info: (o: object, m: string) => lines.push({ level: 'info', o, m }),
    warn: (o: object, m: string) => lines.push({ level: 'warn', o, m }),
  }
}

async function works(): Promise<number[]> {
  const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]))
  const out = Array.from(await y.data())
  y.dispose()
  return out
}

for (const name of ['wasm', 'cpu'] as const) {
  t.test(`explicit ${name}`, async (t) => {
    const log = recorder()
    const choice = await selectBackend(name, log)
    t.equal(choice.name, name)
    t.equal(choice.gpu, false)
    t.equal(tf.getBackend(), name)
    t.strictSame(choice.tried, [{ name, ok: true }])
    t.strictSame(await works(), [11])
    t.match(log.lines, [{ level: 'info', m: new RegExp(name), o: { backend: name } }])
  })
}

t.test('auto falls through the tensorflow packages and webgpu to wasm', { skip: (tfInstalled && 'a tensorflow package is installed here') || (gpuHere && 'a GPU is here') }, async (t) => {
  await tf.setBackend('cpu')
  const log = recorder()
  const choice = await selectBackend('auto', log)
  t.equal(choice.name, 'wasm')
  t.equal(choice.gpu, false)
  t.equal(tf.getBackend(), 'wasm')
  t.match(choice.tried, [
    { name: 'tensorflow-gpu', ok: false, reason: '@tensorflow/tfjs-node-gpu is not installed' },
    { name: 'webgpu', ok: false, reason: webgpuSkipped },
    { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node is not installed' },
    { name: 'wasm', ok: true },
  ])
  t.equal(choice.tried.length, 4, 'cpu is not tried once wasm works')
  // The winner and the reasons of the losers are in the log.
  const info = log.lines.find((l) => l.level === 'info')
  t.ok(info, 'one info line names the winner')
  t.match(info?.o, { backend: 'wasm', requested: 'auto', tried: choice.tried })
  t.equal(log.lines.filter((l) => l.level === 'warn').length, 0, 'a missing optional package or GPU is not a warning')
  t.strictSame(await works(), [11])
})

t.test('explicit tensorflow that cannot load throws one clear line', { skip: tfInstalled && 'a tensorflow package is installed here' }, async (t) => {
  await tf.setBackend('wasm')
  const err = await selectBackend('tensorflow', recorder()).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.ok(err instanceof Error, 'rejects')
  t.match(err?.message, /^MHE_BACKEND=tensorflow: @tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed/)
  t.notMatch(err?.message, /\n/, 'one line')
  t.equal(tf.getBackend(), 'wasm', 'the active backend is left alone')
})

t.test('explicit webgpu without a GPU throws one clear line', { skip: gpuHere && 'a GPU is here' }, async (t) => {
  await tf.setBackend('wasm')
  const log = recorder()
  const err = await selectBackend('webgpu', log).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.ok(err instanceof Error, 'rejects')
  t.match(err?.message, /^MHE_BACKEND=webgpu: /, 'names the backend')
  t.match(err?.message.slice('MHE_BACKEND=webgpu: '.length), webgpuSkipped, 'and the reason')
  t.match(err?.message, /libvulkan1/, 'and what it needs')
  t.notMatch(err?.message, /\n/, 'one line')
  t.equal(tf.getBackend(), 'wasm', 'the active backend is left alone')
  t.equal(tf.findBackendFactory('webgpu'), null, 'nothing registered without an adapter')
})

t.test('explicit webgpu on a GPU', { skip: !gpuHere && 'no GPU here (checked by bench/gpu on the GPU machine)' }, async (t) => {
  const choice = await selectBackend('webgpu', recorder())
  t.match(choice, { name: 'webgpu', gpu: true, device: /\S/ })
  t.strictSame(await works(), [11])
})

t.test('an unknown backend name is refused', async (t) => {
  await t.rejects(selectBackend('gpu' as 'cpu', recorder()), /MHE_BACKEND must be one of auto, tensorflow, webgpu, wasm, cpu, got "gpu"/)
})
