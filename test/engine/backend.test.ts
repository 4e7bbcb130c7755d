// Backend selection: explicit wasm/cpu, 'auto' falling through the tensorflow packages, and clear failures.
import t from 'tap'
import { existsSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../src/engine/backend.js'

const tfInstalled =
  existsSync(new URL('../../node_modules/@tensorflow/tfjs-node/package.json', import.meta.url)) ||
  existsSync(new URL('../../node_modules/@tensorflow/tfjs-node-gpu/package.json', import.meta.url))

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
    t.equal(tf.getBackend(), name)
    t.strictSame(choice.tried, [{ name, ok: true }])
    t.strictSame(await works(), [11])
    t.match(log.lines, [{ level: 'info', m: new RegExp(name), o: { backend: name } }])
  })
}

t.test('auto falls through the tensorflow packages to wasm', { skip: tfInstalled && 'a tensorflow package is installed here' }, async (t) => {
  await tf.setBackend('cpu')
  const log = recorder()
  const choice = await selectBackend('auto', log)
  t.equal(choice.name, 'wasm')
  t.equal(tf.getBackend(), 'wasm')
  t.match(choice.tried, [
    { name: 'tensorflow-gpu', ok: false, reason: '@tensorflow/tfjs-node-gpu is not installed' },
    { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node is not installed' },
    { name: 'wasm', ok: true },
  ])
  t.equal(choice.tried.length, 3, 'cpu is not tried once wasm works')
  // The winner and the reasons of the losers are in the log.
  const info = log.lines.find((l) => l.level === 'info')
  t.ok(info, 'one info line names the winner')
  t.match(info?.o, { backend: 'wasm', requested: 'auto', tried: choice.tried })
  t.equal(log.lines.filter((l) => l.level === 'warn').length, 0, 'a missing optional package is not a warning')
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

t.test('an unknown backend name is refused', async (t) => {
  await t.rejects(selectBackend('gpu' as 'cpu', recorder()), /MHE_BACKEND must be one of auto, tensorflow, wasm, cpu, got "gpu"/)
})
