// Start-up faults of the real process: it exits non-zero with one clear line that names the cause.
import t from 'tap'
import { createServer } from 'node:net'
import { readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { runFailingServer } from '../helpers/process.js'
import { tempDir, testBundle } from '../helpers/server.js'
import { probeAdapter } from '../../src/engine/webgpu.js'

const bundle = await testBundle(t, { featureDim: 4, heads: [3, 3], numLabels: 9, seed: 1 })
const gpuHere = (await probeAdapter())?.ok === true

/** A copy of the good bundle, broken by `breakIt`. */
async function broken(t: { teardown(fn: () => unknown): void }, breakIt: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(await tempDir(t), 'bundle')
  await cp(bundle.dir, dir, { recursive: true })
  await breakIt(dir)
  return dir
}

/** The one line the process printed about the failure. */
const failureLine = (output: string): string => output.split('\n').find((l) => l.startsWith('mhe-serve: ')) ?? ''

t.test('bad bundles', async (t) => {
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    ['missing weights', (dir) => rm(join(dir, 'weights.bin')), /weights\.bin/],
    ['truncated weights', (dir) => truncate(join(dir, 'weights.bin'), 10), /weights\.bin.*(bytes|short|size)/i],
    ['labels of the wrong length', async (dir) => writeFile(join(dir, 'labels.txt'), 'a\nb\nc\n'), /labels\.txt.*3.*9|labels\.txt.*9.*3/],
    ['missing labels', (dir) => rm(join(dir, 'labels.txt')), /labels\.txt/],
    ['corrupted model.json', (dir) => writeFile(join(dir, 'model.json'), '{"modelTopology": '), /model\.json/],
    ['corrupted manifest', async (dir) => {
      const m = JSON.parse(await readFile(join(dir, 'mhe.json'), 'utf8'))
      await writeFile(join(dir, 'mhe.json'), JSON.stringify({ ...m, featureDim: 5 }))
    }, /featureDim|5|4/],
  ]
  // The processes run side by side: each spends most of its time starting tfjs.
  const runs = await Promise.all(
    cases.map(async ([, breakIt]) => runFailingServer({ MHE_MODEL: await broken(t, breakIt), MHE_BACKEND: 'wasm' })),
  )
  for (const [i, [name, , message]] of cases.entries()) {
    const res = runs[i]!
    t.equal(res.code, 1, `${name}: exit 1`)
    const line = failureLine(res.output)
    t.match(line, /^mhe-serve: cannot load the model bundle: /, `${name}: one line`)
    t.match(line, message, `${name}: names the cause (${line})`)
    t.notMatch(res.output, /\n\s+at /, `${name}: no stack trace`)
    const listened = res.output.indexOf('Server listening at')
    t.ok(listened >= 0 && listened < res.output.indexOf(line), `${name}: it listened first, then found the bundle bad`)
  }
})

t.test('unknown backend, backend that cannot load, port in use', async (t) => {
  const unknown = await runFailingServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'quantum' })
  t.equal(unknown.code, 1)
  t.match(failureLine(unknown.output), /MHE_BACKEND must be one of auto, tensorflow, webgpu, wasm, cpu, got "quantum"/)

  const tensorflow = await runFailingServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'tensorflow' })
  t.equal(tensorflow.code, 1)
  t.match(failureLine(tensorflow.output), /tfjs-node.*not installed/, 'explicit tensorflow without the package')

  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const inUse = await runFailingServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', PORT: String(port) })
  t.equal(inUse.code, 1)
  t.match(failureLine(inUse.output), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
})

t.test('explicit webgpu without a GPU: one line naming the backend and the reason', { skip: gpuHere && 'a GPU is here' }, async (t) => {
  // Here Dawn finds no adapter (no Vulkan loader, or Debian's lavapipe, which Dawn refuses), or webgpu is not installed.
  const res = await runFailingServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'webgpu' })
  t.equal(res.code, 1, 'exit 1')
  t.match(failureLine(res.output), /^mhe-serve: cannot start: MHE_BACKEND=webgpu: (no GPU adapter|only a (fallback|software)|webgpu is not installed)/)
  // It listens first (the service loads after), so the only other lines are the server's JSON log lines.
  const others = res.output.trim().split('\n').filter((l) => l !== failureLine(res.output))
  t.ok(others.every((l) => l.startsWith('{')), 'nothing else but log lines: no Dawn warning')
  t.notMatch(res.output, /\n\s+at /, 'no stack trace')
})
