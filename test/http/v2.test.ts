// The Open Inference Protocol routes in-process (app.inject): answers equal /predict's and a brute-force reference,
// JSON and binary tensors agree, Triton's classification format, and every error as `{"error": "..."}` with the
// status, Retry-After and message /predict gives.
import t from 'tap'
import { deflateSync, gzipSync } from 'node:zlib'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { randomFeatures, referenceTopK } from '../helpers/bundles.js'
import { testApp, testBundle } from '../helpers/server.js'
import { buildApp } from '../../src/http/app.js'
import { loadConfig } from '../../src/config.js'
import type { PredictResponse } from '../../src/http/schemas.js'
import { MAX_DENSE_PROBABILITIES } from '../../src/http/routes/v2.js'

const d = 8
const heads = [5, 7]
const numLabels = 30 // < 35: ids 30..34 exist in the product and must never come back

const bundle = await testBundle(t, { featureDim: d, heads, numLabels, seed: 11, outputs: 'concat' })
const app = await testApp(t, bundle, { MHE_MAX_INSTANCES: '16', MHE_MAX_TOP_K: '50', MHE_BODY_LIMIT: '4096' })

const INFER = '/v2/models/test/infer'
const rows = (features: Float32Array, n: number): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from(features.subarray(i * d, (i + 1) * d)))
const features = (data: unknown, shape: number[], extra: object = {}) => ({ name: 'features', datatype: 'FP32', shape, data, ...extra })
const infer = (body: unknown, url = INFER): InjectOptions => ({ method: 'POST', url, payload: body as object })

interface Output {
  name: string
  datatype: string
  shape: number[]
  data?: unknown[]
  parameters?: { binary_data_size?: number }
}
interface InferAnswer {
  model_name: string
  model_version: string
  id?: string
  outputs: Output[]
}

/** Decodes an answer, JSON or JSON + binary outputs, into flat values per output (a small reader of our own). */
function decode(res: LightMyRequestResponse): { head: InferAnswer; values: Record<string, unknown[]> } {
  const raw = res.rawPayload
  const headerLength = res.headers['inference-header-content-length']
  const jsonLength = headerLength === undefined ? raw.length : Number(headerLength)
  const head = JSON.parse(raw.subarray(0, jsonLength).toString('utf8')) as InferAnswer
  const values: Record<string, unknown[]> = {}
  let offset = jsonLength
  for (const o of head.outputs) {
    const size = o.parameters?.binary_data_size
    if (size === undefined) {
      values[o.name] = (o.data ?? []).flat(4)
      continue
    }
    const bytes = raw.subarray(offset, offset + size)
    offset += size
    if (o.datatype === 'FP32') values[o.name] = Array.from({ length: size / 4 }, (_, i) => bytes.readFloatLE(4 * i))
    else if (o.datatype === 'INT64') values[o.name] = Array.from({ length: size / 8 }, (_, i) => Number(bytes.readBigInt64LE(8 * i)))
    else {
      const strings: string[] = []
      for (let p = 0; p < bytes.length; ) {
        const len = bytes.readUInt32LE(p)
        strings.push(bytes.subarray(p + 4, p + 4 + len).toString('utf8'))
        p += 4 + len
      }
      values[o.name] = strings
    }
  }
  if (offset !== raw.length) throw new Error(`answer has ${raw.length - offset} bytes past its outputs`)
  return { head, values }
}

const relClose = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b))

t.test('server and model metadata, health, readiness', async (t) => {
  const meta = await app.inject('/v2')
  t.equal(meta.statusCode, 200)
  t.same(meta.json(), { name: 'mhe-serve', version: '0.1.0', extensions: ['classification', 'binary_tensor_data'] })
  t.same((await app.inject('/v2/health/live')).json(), { live: true })
  const ready = await app.inject('/v2/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { ready: true })
  const expected = {
    name: 'test',
    versions: ['1'],
    platform: 'tensorflowjs',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, d] }],
    outputs: [
      { name: 'label_ids', datatype: 'INT64', shape: [-1, -1] },
      { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
      { name: 'labels', datatype: 'BYTES', shape: [-1, -1] },
      { name: 'head_ids', datatype: 'INT64', shape: [-1, heads.length] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, numLabels] },
    ],
  }
  t.same((await app.inject('/v2/models/test')).json(), expected)
  t.same((await app.inject('/v2/models/test/versions/1')).json(), expected)
  for (const url of ['/v2/models/test/ready', '/v2/models/test/versions/1/ready']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200)
    t.same(res.json(), { name: 'test', ready: true })
  }
})

t.test('infer answers what /predict answers: ids, labels, head ids, scores within 1e-6', async (t) => {
  const n = 5
  const x = randomFeatures(n, d, 5)
  for (const k of [1, 4, 40]) {
    const predicted = (await app.inject({ method: 'POST', url: '/predict', payload: { instances: rows(x, n), top_k: k } })).json<PredictResponse>()
    const flat = await app.inject(infer({ id: `req-${k}`, inputs: [features(Array.from(x), [n, d])], parameters: { top_k: k } }))
    t.equal(flat.statusCode, 200, flat.body)
    t.match(flat.headers['content-type'], /^application\/json/)
    const { head, values } = decode(flat)
    t.equal(head.model_name, 'test')
    t.equal(head.model_version, '1')
    t.equal(head.id, `req-${k}`, 'the request id is echoed')
    const kOut = Math.min(k, numLabels)
    t.same(head.outputs.map((o) => [o.name, o.datatype, o.shape]), [
      ['label_ids', 'INT64', [n, kOut]],
      ['scores', 'FP32', [n, kOut]],
      ['labels', 'BYTES', [n, kOut]],
      ['head_ids', 'INT64', [n, heads.length]],
    ], 'default outputs')
    predicted.predictions.forEach((p, i) => {
      const ref = referenceTopK(x.subarray(i * d, (i + 1) * d), bundle.weights, heads, numLabels, k)
      const row = <T>(name: string) => values[name]!.slice(i * kOut, (i + 1) * kOut) as T[]
      t.same(row<number>('label_ids'), p.top_k.map((c) => c.label_id), `instance ${i} ids = /predict`)
      t.same(row<number>('label_ids'), ref.map((r) => r.id), `instance ${i} ids = reference`)
      t.same(row<string>('labels'), p.top_k.map((c) => c.label), `instance ${i} labels = /predict`)
      t.ok(row<number>('scores').every((s, j) => relClose(s, p.top_k[j]!.score)), `instance ${i} scores within 1e-6 of /predict`)
      t.same(values.head_ids!.slice(i * heads.length, (i + 1) * heads.length), p.head_ids, `instance ${i} head ids`)
    })
    // Triton's Python client sends JSON with no Content-Type at all (as inject sends a string): the same answer.
    const untyped = await app.inject({ method: 'POST', url: INFER, payload: JSON.stringify({ id: `req-${k}`, inputs: [features(Array.from(x), [n, d])], parameters: { top_k: k } }) })
    t.same(untyped.json(), flat.json(), `no Content-Type: read as JSON (k=${k})`)
    // The same request with nested data, and with an explicit model version, answers the same.
    const nested = await app.inject(infer({ id: `req-${k}`, inputs: [features(rows(x, n), [n, d])], parameters: { top_k: k } }, '/v2/models/test/versions/1/infer'))
    t.same(nested.json(), flat.json(), `nested data and the versioned path answer the same (k=${k})`)
  }
})

t.test('binary tensors: binary input and binary outputs decode to the JSON answer', async (t) => {
  const n = 3
  const x = randomFeatures(n, d, 8)
  const jsonAnswer = decode(await app.inject(infer({ inputs: [features(Array.from(x), [n, d])], parameters: { top_k: 3 } })))
  const json = Buffer.from(JSON.stringify({
    inputs: [{ name: 'features', datatype: 'FP32', shape: [n, d], parameters: { binary_data_size: 4 * n * d } }],
    parameters: { top_k: 3, binary_data_output: true },
  }))
  const payload = Buffer.concat([json, Buffer.from(x.buffer)])
  // Triton's Python client sends no Content-Type; the binary extension's own example says application/octet-stream.
  for (const headers of [{}, { 'content-type': 'application/octet-stream' }]) {
    const res = await app.inject({ method: 'POST', url: INFER, payload, headers: { ...headers, 'inference-header-content-length': String(json.length) } })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['content-type'], 'application/octet-stream')
    const header = Number(res.headers['inference-header-content-length'])
    const head = JSON.parse(res.rawPayload.subarray(0, header).toString()) as InferAnswer
    t.ok(head.outputs.every((o) => o.data === undefined && o.parameters?.binary_data_size !== undefined), 'every output is binary')
    const binary = decode(res)
    t.same(binary.values, jsonAnswer.values, 'binary outputs hold exactly the JSON values (FP32 rounded alike)')
  }
  // binary_data on one output overrides binary_data_output.
  const mixed = decode(await app.inject(infer({
    inputs: [features(Array.from(x), [n, d])],
    parameters: { top_k: 3, binary_data_output: true },
    outputs: [{ name: 'labels', parameters: { binary_data: false } }, { name: 'scores' }],
  })))
  t.same(mixed.head.outputs.map((o) => [o.name, o.data === undefined]), [['labels', false], ['scores', true]])
  t.same(mixed.values.labels, jsonAnswer.values.labels)
  t.same(mixed.values.scores, jsonAnswer.values.scores)
})

t.test('classification extension on probabilities: "score:label_id:label", best first', async (t) => {
  const n = 4
  const x = randomFeatures(n, d, 21)
  for (const k of [1, 5, 50]) {
    const predicted = (await app.inject({ method: 'POST', url: '/predict', payload: { instances: rows(x, n), top_k: k } })).json<PredictResponse>()
    const res = await app.inject(infer({ inputs: [features(Array.from(x), [n, d])], outputs: [{ name: 'probabilities', parameters: { classification: k } }] }))
    t.equal(res.statusCode, 200, res.body)
    const { head, values } = decode(res)
    const kc = Math.min(k, numLabels)
    t.same(head.outputs.map((o) => [o.name, o.datatype, o.shape]), [['probabilities', 'BYTES', [n, kc]]])
    predicted.predictions.forEach((p, i) => {
      const strings = values.probabilities!.slice(i * kc, (i + 1) * kc) as string[]
      const parsed = strings.map((s) => /^([^:]+):(\d+):(.*)$/.exec(s)!)
      t.same(parsed.map((m) => Number(m[2])), p.top_k.map((c) => c.label_id), `instance ${i} ids`)
      t.same(parsed.map((m) => m[3]), p.top_k.map((c) => c.label), `instance ${i} labels`)
      t.ok(parsed.every((m, j) => relClose(Number(m[1]), p.top_k[j]!.score)), `instance ${i} scores`)
    })
  }
})

t.test('dense probabilities: the score of every label, up to the documented size', async (t) => {
  const n = 2
  const x = randomFeatures(n, d, 33)
  const res = await app.inject(infer({ inputs: [features(Array.from(x), [n, d])], outputs: [{ name: 'probabilities' }, { name: 'label_ids' }] }))
  t.equal(res.statusCode, 200, res.body)
  const { head, values } = decode(res)
  t.same(head.outputs[0]!.shape, [n, numLabels])
  for (let i = 0; i < n; i++) {
    const ref = referenceTopK(x.subarray(i * d, (i + 1) * d), bundle.weights, heads, numLabels, numLabels)
    const row = values.probabilities!.slice(i * numLabels, (i + 1) * numLabels) as number[]
    t.ok(ref.every((r) => relClose(row[r.id]!, Math.fround(Math.exp(r.logScore)))), `instance ${i}: every label's score = reference`)
    const best = row.indexOf(Math.max(...row))
    t.equal(values.label_ids![i], best, 'the top-1 label is the densest score')
  }

  // A model whose C alone passes the limit: dense refused with a pointer to classification, classification served.
  const wide = await testBundle(t, { featureDim: 2, heads: [256, 257], numLabels: MAX_DENSE_PROBABILITIES + 1, seed: 3 })
  const wideApp = await testApp(t, wide)
  const body = (outputs: object[]) => infer({ inputs: [features([0.5, -0.5], [1, 2])], outputs })
  const refused = await wideApp.inject(body([{ name: 'probabilities' }]))
  t.equal(refused.statusCode, 400)
  t.same(Object.keys(refused.json()), ['error'])
  t.match(refused.json().error, /dense "probabilities" would be 1 x 65537 = 65537 values, more than 65536; .*"classification": k/)
  const top = await wideApp.inject(body([{ name: 'probabilities', parameters: { classification: 3 } }]))
  t.equal(top.statusCode, 200, top.body)
  t.equal((decode(top).values.probabilities as string[]).length, 3)
})

t.test('every error is {"error": "..."} with the status and message /predict gives', async (t) => {
  const good = Array.from({ length: d }, () => 0.5)
  const one = (data: unknown = good, shape = [1, d], extra: object = {}) => infer({ inputs: [features(data, shape, extra)] })
  const predictError = async (payload: object) => (await app.inject({ method: 'POST', url: '/predict', payload })).json().message as string
  const raw = (payload: string | Buffer, headers: Record<string, string> = {}): InjectOptions => ({ method: 'POST', url: INFER, payload, headers })
  const tooMany = Array.from({ length: 17 }, () => good)
  const cases: [string, InjectOptions, number, RegExp | string][] = [
    ['unknown model (metadata)', { method: 'GET', url: '/v2/models/other' }, 404, 'unknown model "other": this server serves "test"'],
    ['unknown model (ready)', { method: 'GET', url: '/v2/models/other/ready' }, 404, /unknown model "other"/],
    ['unknown model (infer)', infer({ inputs: [features(good, [1, d])] }, '/v2/models/other/infer'), 404, /unknown model "other"/],
    ['unknown version (metadata)', { method: 'GET', url: '/v2/models/test/versions/7' }, 404, 'model "test" has no version "7": it serves version "1"'],
    ['unknown version (ready)', { method: 'GET', url: '/v2/models/test/versions/7/ready' }, 404, /no version "7"/],
    ['unknown version (infer)', infer({ inputs: [features(good, [1, d])] }, '/v2/models/test/versions/7/infer'), 404, /no version "7"/],
    ['unknown V2 route', { method: 'GET', url: '/v2/models/test/stats' }, 404, 'no route GET /v2/models/test/stats'],
    ['GET on infer', { method: 'GET', url: INFER }, 404, `no route GET ${INFER}`],
    ['malformed JSON', raw('{"inputs": [', { 'content-type': 'application/json' }), 400, /^body is not valid JSON: /],
    ['malformed JSON without Content-Type', raw('{"inputs": ['), 400, /^body is not valid JSON: /],
    ['empty body', raw('', { 'content-type': 'application/json' }), 400, /got an empty body/],
    ['wrong content type', raw('{}', { 'content-type': 'text/plain' }), 415, 'Content-Type must be application/json, application/octet-stream or none, got text/plain'],
    ['no inputs field', infer({ outputs: [] }), 400, /expected the documented request shape: .*inputs/],
    ['an unknown field', infer({ inputs: [features(good, [1, d])], input: 1 }), 400, /unknown body field "input"/],
    ['an unknown request parameter', infer({ inputs: [features(good, [1, d])], parameters: { sequence_id: 3 } }), 400, /unknown body field "sequence_id" at \/parameters/],
    ['no input', infer({ inputs: [] }), 400, 'expected one input "features", FP32 [-1, 8], got no inputs'],
    ['unknown input', infer({ inputs: [{ ...features(good, [1, d]), name: 'x' }] }), 400, 'unknown input "x": the model takes one input "features", FP32 [-1, 8]'],
    ['input twice', infer({ inputs: [features(good, [1, d]), features(good, [1, d])] }), 400, /given twice/],
    ['wrong datatype', infer({ inputs: [{ ...features(good, [1, d]), datatype: 'FP64' }] }), 400, 'input "features" has datatype FP64, the model expects FP32'],
    ['wrong shape', one(good.slice(1), [1, d - 1]), 400, 'input "features" has shape [1, 7], the model expects [-1, 8] (8 values per instance)'],
    ['one-dimensional shape', one(good, [d]), 400, /has shape \[8\], the model expects \[-1, 8\]/],
    ['data shorter than the shape', one([...good, ...good.slice(1)], [2, d]), 400, 'input "features" has 15 values, its shape [2, 8] needs 16'],
    ['a nested row of the wrong length', one([good, good.slice(1)], [2, d]), 400, 'instance 1 has 7 values, the model expects 8'],
    ['a non-number', one([...good.slice(1), 'x']), 400, 'instance 0 value 7 is "x", expected a finite float32 number'],
    ['a number too big for float32', one([1e39, ...good.slice(1)]), 400, 'instance 0 value 0 is 1e+39, expected a finite float32 number'],
    ['neither data nor binary', infer({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, d] }] }), 400, /neither "data" nor a binary_data_size/],
    ['empty batch', one([], [0, d]), 400, 'expected at least one instance, got none'],
    ['too many instances', one(tooMany, [17, d]), 400, 'expected at most 16 instances per request, got 17'],
    ['top_k 0', infer({ inputs: [features(good, [1, d])], parameters: { top_k: 0 } }), 400, 'top_k must be an integer from 1 to 50, got 0'],
    ['top_k above the maximum', infer({ inputs: [features(good, [1, d])], parameters: { top_k: 51 } }), 400, 'top_k must be an integer from 1 to 50, got 51'],
    ['top_k a string', infer({ inputs: [features(good, [1, d])], parameters: { top_k: '3' } }), 400, 'top_k must be an integer from 1 to 50, got "3"'],
    ['unknown output', infer({ inputs: [features(good, [1, d])], outputs: [{ name: 'logits' }] }), 400, 'unknown output "logits": the model has label_ids, scores, labels, head_ids, probabilities'],
    ['output twice', infer({ inputs: [features(good, [1, d])], outputs: [{ name: 'scores' }, { name: 'scores' }] }), 400, 'output "scores" is requested twice'],
    ['classification on another output', infer({ inputs: [features(good, [1, d])], outputs: [{ name: 'scores', parameters: { classification: 2 } }] }), 400, /applies to output "probabilities", not "scores"/],
    ['classification 0', infer({ inputs: [features(good, [1, d])], outputs: [{ name: 'probabilities', parameters: { classification: 0 } }] }), 400, 'classification must be an integer from 1 to 50, got 0'],
    ['classification above the maximum', infer({ inputs: [features(good, [1, d])], outputs: [{ name: 'probabilities', parameters: { classification: 51 } }] }), 400, /got 51/],
    ['an unknown input field', one(good, [1, d], { pad: 'x' }), 400, /unknown body field "pad" at \/inputs\/0/],
    ['body too large', raw(JSON.stringify({ inputs: [features(good, [1, d])], id: 'x'.repeat(5000) }), { 'content-type': 'application/json' }), 413, 'body is larger than the limit of 4096 bytes'],
  ]
  for (const [name, req, status, message] of cases) {
    const res = await app.inject(req)
    t.equal(res.statusCode, status, `${name}: status (${res.body})`)
    const body = res.json()
    t.same(Object.keys(body), ['error'], `${name}: the protocol's error object`)
    if (typeof message === 'string') t.equal(body.error, message, `${name}: message`)
    else t.match(body.error, message, `${name}: message`)
  }

  // The same words as /predict for the same faults.
  t.equal((await app.inject(one(tooMany, [17, d]))).json().error, await predictError({ instances: tooMany }))
  t.equal((await app.inject(one([good, good.slice(1)], [2, d]))).json().error, await predictError({ instances: [good, good.slice(1)] }))
  t.equal((await app.inject(one([1e39, ...good.slice(1)]))).json().error, await predictError({ instances: [[1e39, ...good.slice(1)]] }))
  t.equal((await app.inject(infer({ inputs: [features(good, [1, d])], parameters: { top_k: 0 } }))).json().error, await predictError({ instances: [good], top_k: 0 }))
  t.equal((await app.inject('/v2/health/ready')).statusCode, 200, 'still ready after all of it')
})

t.test('binary tensor faults: sizes that do not add up', async (t) => {
  const x = Buffer.from(new Float32Array(d).fill(0.5).buffer)
  const send = (header: object, tail: Buffer, headerLength?: string) => {
    const json = Buffer.from(JSON.stringify(header))
    return app.inject({
      method: 'POST',
      url: INFER,
      payload: Buffer.concat([json, tail]),
      headers: { 'inference-header-content-length': headerLength ?? String(json.length) },
    })
  }
  const input = (size: number, shape = [1, d]) => ({ inputs: [{ name: 'features', datatype: 'FP32', shape, parameters: { binary_data_size: size } }] })
  const cases: [string, Promise<LightMyRequestResponse>, RegExp | string][] = [
    ['size not 4·n·d', send(input(4 * d - 4), x.subarray(4)), 'input "features" has binary_data_size 28, its shape [1, 8] of FP32 needs 32 bytes'],
    ['fewer bytes than the size', send(input(4 * d), x.subarray(8)), 'input "features" has binary_data_size 32, but only 24 bytes follow the JSON'],
    ['bytes past the inputs', send(input(4 * d), Buffer.concat([x, x])), 'the body has 64 bytes after the JSON, the inputs\' binary_data_size add up to 32'],
    ['a header length past the body', send(input(4 * d), x, '100000'), /Inference-Header-Content-Length must be an integer from 0 to the body length \d+, got "100000"/],
    ['a header length not a number', send(input(4 * d), x, 'abc'), /got "abc"/],
    ['both data and binary', send({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, d], data: [], parameters: { binary_data_size: 32 } }] }, x), /both "data" and a binary_data_size/],
    ['NaN in binary data', send(input(4 * d), Buffer.from(new Float32Array([NaN, 1, 2, 3, 4, 5, 6, 7]).buffer)), 'instance 0 value 0 is NaN, expected a finite float32 number'],
  ]
  for (const [name, pending, message] of cases) {
    const res = await pending
    t.equal(res.statusCode, 400, `${name}: status`)
    if (typeof message === 'string') t.equal(res.json().error, message, name)
    else t.match(res.json().error, message, name)
  }
})

t.test('503 + Retry-After: queue full; draining still serves; engine failed', async (t) => {
  const local = await testApp(t, bundle, { MHE_MAX_BATCH: '1', MHE_MAX_QUEUE: '1' })
  const body = (n: number) => infer({ inputs: [features(Array.from({ length: n * d }, () => 0.1), [n, d])] })
  const full = await local.inject(body(2))
  const predictFull = await local.inject({ method: 'POST', url: '/predict', payload: { instances: [Array(d).fill(0.1), Array(d).fill(0.1)] } })
  t.equal(full.statusCode, 503)
  t.equal(full.headers['retry-after'], '1')
  t.same(full.json(), { error: predictFull.json().message }, 'queue full: /predict\'s message')

  local.mhe.lifecycle.to('draining')
  const ready = await local.inject('/v2/health/ready')
  t.equal(ready.statusCode, 503, 'draining: not ready')
  t.equal(ready.headers['retry-after'], '1')
  t.same(ready.json(), { ready: false })
  const modelReady = await local.inject('/v2/models/test/ready')
  t.equal(modelReady.statusCode, 503)
  t.equal(modelReady.headers['retry-after'], '1')
  t.same(modelReady.json(), { name: 'test', ready: false })
  t.equal((await local.inject(body(1))).statusCode, 200, 'draining: still answers')

  local.mhe.lifecycle.to('failed')
  const live = await local.inject('/v2/health/live')
  t.equal(live.statusCode, 503)
  t.same(live.json(), { live: false })
  const failed = await local.inject(body(1))
  t.equal(failed.statusCode, 503)
  t.equal(failed.headers['retry-after'], '1')
  t.same(failed.json(), { error: 'the inference engine of this process stopped; retry on another replica' })
})

t.test('listening before the model is loaded: V2 readiness and model routes answer 503 + Retry-After, then 200', async (t) => {
  const starting = await buildApp(
    loadConfig({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent', MHE_MAX_EVENT_LOOP_DELAY_MS: '0' }),
    { startService: false },
  )
  t.teardown(() => starting.close())
  const one = infer({ inputs: [features(Array(d).fill(0.1), [1, d])] })
  t.same((await starting.inject('/v2')).json().extensions, ['classification', 'binary_tensor_data'], 'server metadata needs no model')
  t.same((await starting.inject('/v2/health/live')).json(), { live: true }, 'alive while loading')
  const notReady: [string, InjectOptions, unknown][] = [
    ['server ready', { method: 'GET', url: '/v2/health/ready' }, { ready: false }],
    ['model ready', { method: 'GET', url: '/v2/models/test/ready' }, { name: 'test', ready: false }],
    ['model metadata', { method: 'GET', url: '/v2/models/test' }, { error: 'the model is not ready yet' }],
    ['infer', one, { error: 'the model is not ready yet' }],
  ]
  for (const [name, req, expected] of notReady) {
    const res = await starting.inject(req)
    t.equal(res.statusCode, 503, `${name}: 503`)
    t.equal(res.headers['retry-after'], '1', `${name}: Retry-After`)
    t.same(res.json(), expected, `${name}: body`)
  }
  const predicted = await starting.inject({ method: 'POST', url: '/predict', payload: { instances: [Array(d).fill(0.1)] } })
  t.equal((await starting.inject(one)).json().error, predicted.json().message, 'infer says what /predict says')

  await starting.mhe.start()
  for (const [name, req] of notReady) t.equal((await starting.inject(req)).statusCode, 200, `${name}: 200 once loaded`)
})

t.test('bearer tokens guard infer when MHE_API_KEYS is set; metadata and health stay open', async (t) => {
  const secured = await testApp(t, bundle, { MHE_API_KEYS: 'alpha' })
  const req = (auth?: string): InjectOptions => ({ ...infer({ inputs: [features(Array(d).fill(0), [1, d])] }), headers: auth ? { authorization: auth } : {} })
  const none = await secured.inject(req())
  t.equal(none.statusCode, 401)
  t.match(none.headers['www-authenticate'], /^Bearer/)
  t.same(Object.keys(none.json()), ['error'])
  t.equal((await secured.inject(req('Bearer nope'))).statusCode, 401)
  t.equal((await secured.inject(req('Bearer alpha'))).statusCode, 200)
  for (const url of ['/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/test', '/v2/models/test/ready']) {
    t.equal((await secured.inject(url)).statusCode, 200, `${url} is open`)
  }
})

t.test('metrics count V2 requests by route and V2 rejections by code', async (t) => {
  await app.inject(infer({ inputs: [features(Array(d).fill(0), [1, d])] }))
  await app.inject(infer({ inputs: [features(Array(d - 1).fill(0), [1, d - 1])] }))
  const text = (await app.inject('/metrics')).body
  t.match(text, /mhe_http_requests_total\{route="\/v2\/models\/:name\/infer",method="POST",status="200"\} [1-9]/)
  t.match(text, /mhe_http_requests_total\{route="\/v2\/models\/:name\/infer",method="POST",status="400"\} [1-9]/)
  t.match(text, /mhe_rejections_total\{reason="MHE_BAD_INSTANCE"\} [1-9]/)
})

t.test('Content-Encoding gzip and deflate (Triton\'s client offers both) are inflated, within the body limit', async (t) => {
  const x = randomFeatures(2, d, 4)
  const body = Buffer.from(JSON.stringify({ inputs: [features(Array.from(x), [2, d])], parameters: { top_k: 2 } }))
  const plain = await app.inject({ method: 'POST', url: INFER, payload: body })
  t.equal(plain.statusCode, 200)
  for (const [encoding, payload] of [['gzip', gzipSync(body)], ['deflate', deflateSync(body)]] as const) {
    const res = await app.inject({ method: 'POST', url: INFER, payload, headers: { 'content-encoding': encoding } })
    t.equal(res.statusCode, 200, `${encoding}: ${res.body}`)
    t.same(res.json(), plain.json(), `${encoding}: the same answer`)
  }
  const bomb = gzipSync(Buffer.alloc(100_000, 32)) // small on the wire, over the 4096-byte limit inflated
  const big = await app.inject({ method: 'POST', url: INFER, payload: bomb, headers: { 'content-encoding': 'gzip' } })
  t.equal(big.statusCode, 413)
  t.same(big.json(), { error: 'body is larger than the limit of 4096 bytes' })
  const bad = await app.inject({ method: 'POST', url: INFER, payload: body, headers: { 'content-encoding': 'gzip' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().error, /^body is not valid gzip data: /)
  const br = await app.inject({ method: 'POST', url: INFER, payload: body, headers: { 'content-encoding': 'br' } })
  t.equal(br.statusCode, 415)
  t.same(br.json(), { error: 'Content-Encoding must be gzip, deflate or identity, got br' })
})
