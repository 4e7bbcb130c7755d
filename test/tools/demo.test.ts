// The demo client against the real server: a freshly trained spelling bundle is served on port 0 and the
// OpenAPI client's top-5 per word must match the trained model's own top-5.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import t from 'tap'
import { buildApp } from '../../src/http/app.js'
import { writeBundle } from '../../tools/bundle/write.js'
import { loadConfig } from '../../src/config.js'
import { writeFile } from 'node:fs/promises'
import { correct, spell } from '../../tools/demo/client.js'
import { loadPrior, rerank } from '../../tools/demo/rerank.js'
import { DEFAULT_NGRAMS, featurizeSparse, type NgramSettings } from '../../tools/features/ngrams.js'
import { toSparseBatch } from '../../tools/train/mlp.js'
import { train } from '../../tools/train/train.js'
import { loadWords } from '../../tools/train/words.js'

await tf.setBackend('wasm')
const SMALL: NgramSettings = { ...DEFAULT_NGRAMS, dim: 512 }

t.test('npm run demo client: featurizes from GET /model, top-5 from POST /predict', async (t) => {
  const labels = loadWords(10).words.slice(0, 120)
  const heads = [11, 11]
  const { model } = await train({
    labels, features: SMALL, heads, hidden: [64], epochs: 6, batchSize: 64, lr: 0.01, seed: 3,
    typosPerWord: 1, twoEditShare: 0,
  })
  const words = ['thier', 'abuot', 'Because']
  const expected = (await model.topK(toSparseBatch(words.map((w) => featurizeSparse(w, SMALL))), 5)).map((c) => c.map((x) => labels[x.id]))
  const dir = await mkdtemp(join(tmpdir(), 'mhe-demo-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const layers = await model.toLayersModel()
  await writeBundle(dir, {
    manifest: { name: 'spell', version: '1', featureDim: SMALL.dim, heads, numLabels: labels.length, outputs: 'logits', features: { ...SMALL } },
    model: layers,
    labels,
  })
  layers.dispose()
  model.dispose()

  // Event-loop guard off: this process is client and server at once, and a busy machine would make it answer 503.
  const app = await buildApp(loadConfig({ MHE_MODEL: dir, MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent', MHE_MAX_EVENT_LOOP_DELAY_MS: '0' }))
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  const url = `http://127.0.0.1:${addr.port}`

  const got = await correct(words, { url })
  t.same(got.map((c) => c.map((x) => x.label)), expected, 'served top-5 = the trained model top-5')
  for (const c of got) {
    t.equal(c.length, 5)
    t.ok(c.every((x, i) => x.score > 0 && x.score <= 1 && (i === 0 || c[i - 1]!.score >= x.score)), 'scores in (0, 1], best first')
  }

  // A server whose /model has no "features": the client reads them from the bundle's mhe.json instead.
  const stripFeatures: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!new URL(input instanceof Request ? input.url : String(input)).pathname.endsWith('/model')) return res
    const { features: _features, ...rest } = (await res.json()) as Record<string, unknown>
    return new Response(JSON.stringify(rest), { status: res.status, headers: { 'content-type': 'application/json' } })
  }
  const viaFile = await correct(words, { url, fetch: stripFeatures, modelDir: dir })
  t.same(viaFile, got)
  await t.rejects(correct(words, { url, fetch: stripFeatures }), /no "features"/)
  await t.rejects(correct(words, { url: 'http://127.0.0.1:9' }))

  // Without a re-ranker in the bundle, spell() gives the model's top-5, all "sure"; a label is a known word.
  const plain = await spell([...words, labels[7]!], { url })
  t.same(plain.slice(0, 3).map((s) => s.suggestions), got)
  t.ok(plain.every((s) => s.sure))
  t.same(plain.map((s) => s.known), [false, false, false, true])

  // With features.rerank (as npm run train writes it): the model's top-100 re-ranked with the prior file.
  const settings = { candidates: 100, prior: 'prior.txt', modelWeight: 0.15, priorWeight: 0.2, editWeight: 6, temperature: 1, noneScore: -10, threshold: 0.5 }
  await writeFile(join(dir, 'prior.txt'), labels.map((_, i) => String(i % 7)).join('\n') + '\n')
  const withRerank: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!new URL(input instanceof Request ? input.url : String(input)).pathname.endsWith('/model')) return res
    const body = (await res.json()) as { features: Record<string, unknown> }
    body.features = { ...body.features, rerank: settings }
    return new Response(JSON.stringify(body), { status: res.status, headers: { 'content-type': 'application/json' } })
  }
  const spelled = await spell([...words, labels[7]!], { url, fetch: withRerank, modelDir: dir })
  const all = await correct([...words, labels[7]!], { url, topK: 100 })
  const prior = await loadPrior(join(dir, 'prior.txt'), labels)
  spelled.forEach((s, i) => {
    const want = rerank(s.word, all[i]!, prior, settings).slice(0, 5)
    t.same(s.suggestions, want.map(({ label, score }) => ({ label, score })), `${s.word}: the re-ranked top-5 of the served top-100`)
    t.equal(s.sure, want[0]!.score >= settings.threshold)
  })
  t.equal(spelled[3]!.suggestions[0]!.label, labels[7], 'a known word comes back as itself')
  t.ok(spelled[3]!.known)
  await t.rejects(spell(words, { url, fetch: withRerank }), /frequency prior file/)
})
