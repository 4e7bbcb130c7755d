// Conformance with PyTorch: the fixture's MHP layer (F32, F16, BF16), imported and served by the engine, gives
// PyTorch's exact top-5 over valid ids (fixture: test/fixtures/pytorch/make_fixture.py, run by hand).
import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../../src/http/app.js'
import { selectBackend } from '../../src/engine/backend.js'
import { loadConfig } from '../../src/config.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine } from '../../src/engine/engine.js'
import { importSafetensors } from '../../tools/import/import.js'

const FIX = fileURLToPath(new URL('../fixtures/pytorch/', import.meta.url))

interface Expected {
  reference: string
  featureDim: number
  heads: number[]
  numLabels: number
  k: number
  n: number
  features: string
  variants: Record<string, { file: string; rawArgmaxInvalid: number[]; ids: number[][]; logScores: number[][] }>
}

const silent = { info: () => {}, warn: () => {} }

async function fixture(): Promise<{ exp: Expected; features: Float32Array }> {
  const exp = JSON.parse(await readFile(join(FIX, 'expected.json'), 'utf8')) as Expected
  const raw = await readFile(join(FIX, exp.features))
  return { exp, features: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) }
}

t.test('imported PyTorch MHP layers predict exactly what PyTorch computes', async (t) => {
  const { exp, features } = await fixture()
  t.equal(features.length, exp.n * exp.featureDim, 'features file holds n x D float32')
  t.ok(exp.n >= 200, `${exp.n} inputs`)
  t.comment(`reference: ${exp.reference}`)

  const backend = await selectBackend('wasm', silent)
  const tmp = await mkdtemp(join(tmpdir(), 'mhe-conf-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))

  for (const [variant, v] of Object.entries(exp.variants)) {
    t.ok(v.rawArgmaxInvalid.length >= 20, `${variant}: ${v.rawArgmaxInvalid.length} inputs whose raw per-head argmax composes to an id >= C`)
    const out = join(tmp, variant)
    const res = await importSafetensors({
      safetensors: join(FIX, v.file), heads: exp.heads, numLabels: exp.numLabels, labels: join(FIX, 'labels.txt'), out, name: `conf-${variant}`,
    })
    t.same([res.weight, res.bias, res.manifest.featureDim], ['fc.weight', 'fc.bias', exp.featureDim], `${variant}: found fc.weight + fc.bias (beside the decoy encoder)`)

    const bundle = await loadBundle(out)
    const engine = await Engine.create(bundle, backend.name)
    try {
      const got = await engine.predict(features, exp.n, new Array<number>(exp.n).fill(exp.k))
      let idMismatch = 0
      let worstRel = 0
      const firstBad: string[] = []
      for (let i = 0; i < exp.n; i++) {
        const ids = got[i]!.map((c) => c.id)
        if (ids.join() !== v.ids[i]!.join()) {
          idMismatch++
          if (firstBad.length < 3) firstBad.push(`input ${i}: got ${ids.join(',')}, PyTorch ${v.ids[i]!.join(',')}`)
          continue
        }
        got[i]!.forEach((c, r) => {
          const want = Math.exp(v.logScores[i]![r]!)
          worstRel = Math.max(worstRel, Math.abs(Math.exp(c.logScore) - want) / want)
        })
      }
      t.equal(idMismatch, 0, `${variant}: identical top-${exp.k} ids for all ${exp.n} inputs${firstBad.length ? ` (${firstBad.join('; ')})` : ''}`)
      t.ok(worstRel <= 1e-5, `${variant}: scores within 1e-5 relative (worst ${worstRel.toExponential(2)})`)
      const invalidTop1 = v.rawArgmaxInvalid.map((i) => got[i]![0]!)
      t.ok(invalidTop1.every((c) => c.id < exp.numLabels), `${variant}: inputs with an argmax id >= C get the best valid id instead`)
      t.equal(bundle.labels.name(got[0]![0]!.id), `label_${String(got[0]![0]!.id).padStart(3, '0')}`, `${variant}: label names line up with ids`)
    } finally {
      engine.dispose()
    }
  }
})

t.test('served over HTTP: POST /predict answers PyTorch\'s top-5 for the imported bundle', async (t) => {
  const { exp, features } = await fixture()
  const tmp = await mkdtemp(join(tmpdir(), 'mhe-conf-http-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const v = exp.variants.f32!
  await importSafetensors({ safetensors: join(FIX, v.file), heads: exp.heads, numLabels: exp.numLabels, labels: join(FIX, 'labels.txt'), out: tmp, force: true })
  const app = await buildApp(loadConfig({ MHE_MODEL: tmp, MHE_BACKEND: 'wasm' }), { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const d = exp.featureDim
  let idMismatch = 0
  let worstRel = 0
  const chunk = 32
  for (let start = 0; start < exp.n; start += chunk) {
    const rows = Array.from({ length: Math.min(chunk, exp.n - start) }, (_, r) => Array.from(features.subarray((start + r) * d, (start + r + 1) * d)))
    const res = await app.inject({ method: 'POST', url: '/predict', payload: { instances: rows, top_k: exp.k } })
    t.equal(res.statusCode, 200, `inputs ${start}..${start + rows.length - 1}`)
    const body = res.json() as { predictions: { label_id: number; top_k: { label_id: number; label: string; score: number }[] }[] }
    body.predictions.forEach((p, r) => {
      const i = start + r
      if (p.top_k.map((c) => c.label_id).join() !== v.ids[i]!.join() || p.label_id !== v.ids[i]![0]) idMismatch++
      else p.top_k.forEach((c, j) => {
        const want = Math.exp(v.logScores[i]![j]!)
        worstRel = Math.max(worstRel, Math.abs(c.score - want) / want)
      })
    })
  }
  t.equal(idMismatch, 0, `identical label ids over HTTP for all ${exp.n} inputs`)
  t.ok(worstRel <= 1e-5, `scores within 1e-5 relative over HTTP (worst ${worstRel.toExponential(2)})`)
})
