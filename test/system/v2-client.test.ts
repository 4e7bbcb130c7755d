// A V2 client we did not write: Triton's Python HTTP client (tritonclient.http, with Debian's python3-numpy,
// python3-geventhttpclient, python3-rapidjson, python3-gevent) against the real server process on a real port.
// test/helpers/tritonclient_drive.py makes the calls and reports what the client got; this file checks the report
// against /predict's answers on the same features.
//
// tritonclient's source is not in this repository (no registry here ships it): point MHE_TRITONCLIENT_PATH at the
// folder holding its `tritonclient` package (src/python/library in triton-inference-server/client), or put it at
// ../shared/tritonclient. Without it this test is skipped, saying so.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { randomFeatures, referenceTopK } from '../helpers/bundles.js'
import { tempDir, testBundle } from '../helpers/server.js'
import { startServer } from '../helpers/process.js'
import type { PredictResponse } from '../../src/http/schemas.js'

const PYTHON = '/usr/bin/python3'
const candidates = [process.env.MHE_TRITONCLIENT_PATH, resolve('../shared/tritonclient'), resolve('vendor/tritonclient')]
const clientPath = candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(join(p, 'tritonclient', 'http')))

interface Tensor {
  shape: number[]
  data: (number | string)[]
}
interface Report {
  live: boolean
  ready: boolean
  server: unknown
  model: unknown
  model_version: unknown
  model_ready: boolean
  model_version_ready: boolean
  unknown_model_ready: boolean
  unknown_model_metadata: string
  json: { id: string; binary_outputs: boolean[]; tensors: Record<string, Tensor> }
  binary: { id: string; names: string[]; binary_outputs: boolean[]; tensors: Record<string, Tensor> }
  gzip: Record<string, Tensor>
  classification_binary: { probabilities: Tensor }
  classification_json: { probabilities: Tensor }
  dense: { probabilities: Tensor }
  wrong_shape: string
  wrong_shape_json: string
  unknown_model_infer: string
  unknown_version_infer: string
  bad_top_k: string
  concurrent: { id: string; tensors: Record<string, Tensor> }[]
}

const relClose = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b))

t.test('Triton\'s Python HTTP client against the real server', { skip: clientPath ? false : 'tritonclient source not found: set MHE_TRITONCLIENT_PATH (see the header of this file)' }, async (t) => {
  const d = 6
  const heads = [4, 3, 5]
  const numLabels = 55 // product 60: ids 55..59 must never come back
  const n = 12
  const k = 4
  const bundle = await testBundle(t, { featureDim: d, heads, numLabels, seed: 31, name: 'mhe_tc' })
  const server = await startServer({ MHE_MODEL: bundle.dir, MHE_MAX_TOP_K: '20' })
  t.teardown(() => {
    server.child.kill('SIGKILL')
  })
  const x = randomFeatures(n, d, 99)
  const rows = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * d, (i + 1) * d)))
  const predicted = (await (await fetch(`${server.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: rows, top_k: k }),
  })).json()) as PredictResponse

  const dir = await tempDir(t)
  const file = join(dir, 'features.f32')
  await writeFile(file, new Uint8Array(x.buffer))
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['test/helpers/tritonclient_drive.py', server.url.replace('http://', ''), 'mhe_tc', '1', file, String(n), String(d), String(k), '1'],
    { env: { ...process.env, PYTHONPATH: clientPath }, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
  )
  const r = JSON.parse(stdout) as Report

  t.test('server and model metadata, readiness', async (t) => {
    t.equal(r.live, true)
    t.equal(r.ready, true)
    t.same(r.server, { name: 'mhe-serve', version: '0.1.0', extensions: ['classification', 'binary_tensor_data'] })
    t.match(r.model, { name: 'mhe_tc', versions: ['1'], inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, d] }] })
    t.same(r.model_version, r.model)
    t.same((r.model as { outputs: { name: string }[] }).outputs.map((o) => o.name), ['label_ids', 'scores', 'labels', 'head_ids', 'probabilities'])
    t.equal(r.model_ready, true)
    t.equal(r.model_version_ready, true)
    t.equal(r.unknown_model_ready, false)
    t.equal(r.unknown_model_metadata, 'unknown model "no-such-model": this server serves "mhe_tc"')
  })

  /** The client's label_ids / scores / labels (and head_ids) equal /predict's, instance by instance. */
  const checkTopK = (t: Test, tensors: Record<string, Tensor>, from: number, count: number, what: string) => {
    t.same(tensors.label_ids!.shape, [count, k], `${what}: label_ids shape`)
    for (let i = 0; i < count; i++) {
      const p = predicted.predictions[from + i]!
      const row = (name: string) => tensors[name]!.data.slice(i * k, (i + 1) * k)
      t.same(row('label_ids'), p.top_k.map((c) => c.label_id), `${what}: instance ${from + i} ids`)
      t.same(row('labels'), p.top_k.map((c) => c.label), `${what}: instance ${from + i} labels`)
      t.ok((row('scores') as number[]).every((s, j) => relClose(s, p.top_k[j]!.score)), `${what}: instance ${from + i} scores within 1e-6`)
      if (tensors.head_ids) t.same(tensors.head_ids.data.slice(i * heads.length, (i + 1) * heads.length), p.head_ids, `${what}: head ids`)
    }
  }

  t.test('JSON infer (data in the JSON, outputs as JSON) answers what /predict answers', async (t) => {
    t.equal(r.json.id, 'json-1', 'request id echoed')
    t.same(r.json.binary_outputs, [false, false, false, false])
    checkTopK(t, r.json.tensors, 0, n, 'json')
    // And /predict agrees with a plain-loop reference, so the client saw the exact top-k.
    const ref = referenceTopK(x.subarray(0, d), bundle.weights, heads, numLabels, k)
    t.same(r.json.tensors.label_ids!.data.slice(0, k), ref.map((c) => c.id))
  })

  t.test('binary infer (binary input, binary outputs by default) answers the same', async (t) => {
    t.equal(r.binary.id, 'binary-1')
    t.same(r.binary.names, ['label_ids', 'scores', 'labels', 'head_ids'], 'no outputs named: the default four')
    t.same(r.binary.binary_outputs, [true, true, true, true], 'the client asked for binary_data_output')
    checkTopK(t, r.binary.tensors, 0, n, 'binary')
    t.same(r.binary.tensors, r.json.tensors, 'binary and JSON tensors hold the same values')
    t.same(r.gzip, r.json.tensors, 'a gzip-compressed request answers the same')
  })

  t.test('classification extension: "score:label_id:label", binary and JSON', async (t) => {
    t.same(r.classification_binary, r.classification_json)
    const c = r.classification_binary.probabilities
    t.same(c.shape, [n, k])
    predicted.predictions.forEach((p, i) => {
      const parsed = (c.data.slice(i * k, (i + 1) * k) as string[]).map((s) => /^([^:]+):(\d+):(.*)$/.exec(s)!)
      t.same(parsed.map((m) => Number(m[2])), p.top_k.map((e) => e.label_id), `instance ${i} ids`)
      t.same(parsed.map((m) => m[3]), p.top_k.map((e) => e.label), `instance ${i} labels`)
      t.ok(parsed.every((m, j) => relClose(Number(m[1]), p.top_k[j]!.score)), `instance ${i} scores`)
    })
  })

  t.test('dense probabilities: every label\'s score, /predict\'s top-k among them', async (t) => {
    const dense = r.dense.probabilities
    t.same(dense.shape, [1, numLabels])
    for (const c of predicted.predictions[0]!.top_k) t.ok(relClose(dense.data[c.label_id] as number, c.score), `label ${c.label_id}`)
  })

  t.test('faults reach the client as errors with our messages', async (t) => {
    t.equal(r.wrong_shape, `input "features" has shape [1, ${d - 1}], the model expects [-1, ${d}] (${d} values per instance)`)
    t.equal(r.wrong_shape_json, `input "features" has shape [2, ${d + 1}], the model expects [-1, ${d}] (${d} values per instance)`)
    t.equal(r.unknown_model_infer, 'unknown model "no-such-model": this server serves "mhe_tc"')
    t.equal(r.unknown_version_infer, 'model "mhe_tc" has no version "no-such-version": it serves version "1"')
    t.equal(r.bad_top_k, 'top_k must be an integer from 1 to 20, got 0')
  })

  t.test('concurrent async_infer calls each get their own instance\'s answer', async (t) => {
    t.same(r.concurrent.map((c) => c.id), Array.from({ length: n }, (_, i) => `row-${i}`))
    r.concurrent.forEach((c, i) => checkTopK(t, c.tensors, i, 1, `async ${c.id}`))
  })
})
