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
import { correct } from '../../tools/demo/client.js'
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
})
