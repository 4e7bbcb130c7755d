// The HTTP interface in-process (app.inject): answers checked against a plain-loop reference, and every kind of
// bad input answered with a 4xx, a stable code and a message that says what was expected.
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { randomFeatures, referenceTopK } from '../helpers/bundles.js'
import { testApp, testBundle, numTensors } from '../helpers/server.js'
import type { PredictResponse } from '../../src/http/schemas.js'

const d = 8
const heads = [5, 7]
const numLabels = 30 // < 35: ids 30..34 exist in the product and must never come back

const bundle = await testBundle(t, { featureDim: d, heads, numLabels, seed: 11, outputs: 'concat' })
const app = await testApp(t, bundle, { MHE_MAX_INSTANCES: '16', MHE_MAX_TOP_K: '50', MHE_BODY_LIMIT: '4096' })

const rows = (features: Float32Array, n: number): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from(features.subarray(i * d, (i + 1) * d)))
const json = (payload: unknown) => ({ method: 'POST' as const, url: '/predict', payload: payload as object })
/** A raw float32 body: on POST /predict/binary, or on POST /predict, which still takes one (README). */
const binary = (bytes: Uint8Array, query = '', path = '/predict') => ({
  method: 'POST' as const,
  url: `${path}${query}`,
  payload: Buffer.from(bytes),
  headers: { 'content-type': 'application/octet-stream' },
})

t.test('predictions equal a brute-force reference, JSON and binary alike', async (t) => {
  const n = 12
  const features = randomFeatures(n, d, 5)
  for (const k of [1, 5, 40]) {
    const res = await app.inject(json({ instances: rows(features, n), top_k: k }))
    t.equal(res.statusCode, 200)
    const body = res.json<PredictResponse>()
    t.equal(body.model, 'test')
    t.equal(body.predictions.length, n)
    body.predictions.forEach((p, i) => {
      const ref = referenceTopK(features.subarray(i * d, (i + 1) * d), bundle.weights, heads, numLabels, k)
      t.same(p.top_k.map((c) => c.label_id), ref.map((r) => r.id), `instance ${i} top-${k} ids`)
      p.top_k.forEach((c, j) => {
        t.ok(Math.abs(c.score - Math.exp(ref[j]!.logScore)) < 1e-5, 'score = product of head softmax probabilities')
        t.equal(c.label, `label-${c.label_id}`)
        t.ok(c.label_id < numLabels)
      })
      t.equal(p.label_id, ref[0]!.id)
      t.same(p.head_ids, ref[0]!.headIds)
      t.same(p.top_k[0], { label_id: p.label_id, label: p.label, score: p.score }, 'first top_k entry is the prediction')
    })
    t.equal(body.predictions[0]!.top_k.length, Math.min(k, numLabels), 'top_k has k entries, or C when k > C')

    const bin = await app.inject(binary(new Uint8Array(features.buffer), `?top_k=${k}`))
    t.equal(bin.statusCode, 200)
    t.same(bin.json(), body, `binary float32 answers exactly what JSON answers (k=${k})`)
    const predictBinary = await app.inject(binary(new Uint8Array(features.buffer), `?top_k=${k}`, '/predict/binary'))
    t.equal(predictBinary.statusCode, 200)
    t.same(predictBinary.json(), body, `POST /predict/binary answers the same (k=${k})`)
  }
})

t.test('health, model metadata, docs, request ids', async (t) => {
  t.same((await app.inject('/health/live')).json(), { status: 'ok' })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
  const model = (await app.inject('/model')).json()
  t.match(model, { name: 'test', featureDim: d, heads, numLabels, backend: 'wasm', batching: { maxInstances: 16, maxTopK: 50, maxBatch: 256, maxDelayMs: 0 } })
  const docs = await app.inject('/docs/json')
  t.equal(docs.json().openapi, '3.0.3')
  const withId = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'abc-123' } })
  t.equal(withId.headers['x-request-id'], 'abc-123', 'a caller request id is kept')
  for (const bad of ['x'.repeat(129), 'a b', 'é', '<script>']) {
    const res = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, `${JSON.stringify(bad.slice(0, 10))}: replaced by a fresh id`)
  }
  const made = await Promise.all([1, 2, 3].map(async () => (await app.inject('/health/live')).headers['x-request-id']))
  for (const id of made) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'one is made otherwise, shaped as a UUID')
  t.equal(new Set(made).size, 3, 'each request its own')
})

t.test('bad input: 4xx with a stable code and a message naming what was expected', async (t) => {
  const good = Array.from({ length: d }, () => 0.5)
  const tooMany = Array.from({ length: 17 }, () => good)
  const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer)
  const cases: [string, InjectOptions, number, string, RegExp][] = [
    ['malformed JSON', { method: 'POST', url: '/predict', payload: '{"instances": [[1,', headers: { 'content-type': 'application/json' } }, 400, 'MHE_MALFORMED_JSON', /not valid JSON/],
    ['empty JSON body', { method: 'POST', url: '/predict', payload: '', headers: { 'content-type': 'application/json' } }, 400, 'MHE_BAD_REQUEST', /empty body/],
    ['wrong content type', { method: 'POST', url: '/predict', payload: 'hello', headers: { 'content-type': 'text/plain' } }, 415, 'MHE_UNSUPPORTED_MEDIA_TYPE', /application\/json or application\/octet-stream, got text\/plain/],
    ['missing instances', json({ top_k: 1 }), 400, 'MHE_BAD_REQUEST', /instances/],
    ['empty instances', json({ instances: [] }), 400, 'MHE_EMPTY_BATCH', /at least one instance/],
    ['instances not an array', json({ instances: 'abc' }), 400, 'MHE_BAD_REQUEST', /instances must be array/],
    ['instance of the wrong length', json({ instances: [good, good, good, good.slice(1)] }), 400, 'MHE_BAD_INSTANCE', /instance 3 has 7 values, the model expects 8/],
    ['a non-number', json({ instances: [[...good.slice(1), 'x']] }), 400, 'MHE_BAD_REQUEST', /instances\/0\/7 must be number/],
    ['null in an instance', json({ instances: [[null, ...good.slice(1)]] }), 400, 'MHE_BAD_REQUEST', /must be number/],
    ['a number too big for float32', json({ instances: [[1e39, ...good.slice(1)]] }), 400, 'MHE_BAD_INSTANCE', /instance 0 value 0 is 1e\+39, expected a finite float32/],
    ['an unknown field', json({ instances: [good], topk: 3 }), 400, 'MHE_BAD_REQUEST', /unknown body field "topk"/],
    ['a __proto__ key: named, not "invalid JSON"', { method: 'POST', url: '/predict', payload: `{"instances": [${JSON.stringify(good)}], "__proto__": {"x": 1}}`, headers: { 'content-type': 'application/json' } }, 400, 'MHE_BAD_REQUEST', /unknown body field "__proto__"/],
    ['an unknown query parameter', { ...json({ instances: [good] }), url: '/predict?topk=5' }, 400, 'MHE_BAD_REQUEST', /unknown query parameter "topk"/],
    ['an unknown query parameter on /predict/binary', binary(f32(good), '?k=5', '/predict/binary'), 400, 'MHE_BAD_REQUEST', /unknown query parameter "k"/],
    ['top_k in both the query and the body', { ...json({ instances: [good], top_k: 2 }), url: '/predict?top_k=3' }, 400, 'MHE_BAD_REQUEST', /top_k is given in both the query and the body/],
    ['nesting deeper than the shape', { method: 'POST', url: '/predict', payload: '['.repeat(3000), headers: { 'content-type': 'application/json' } }, 400, 'MHE_JSON_TOO_DEEP', /deeper than the 3 levels/],
    ['instances one level too deep', json({ instances: [[good]] }), 400, 'MHE_JSON_TOO_DEEP', /3 levels/],
    ['top_k 0', json({ instances: [good], top_k: 0 }), 400, 'MHE_BAD_TOP_K', /integer from 1 to 50, got 0/],
    ['top_k fractional', json({ instances: [good], top_k: 1.5 }), 400, 'MHE_BAD_TOP_K', /got 1.5/],
    ['top_k above the maximum', json({ instances: [good], top_k: 51 }), 400, 'MHE_BAD_TOP_K', /got 51/],
    ['top_k a string', json({ instances: [good], top_k: '3' }), 400, 'MHE_BAD_TOP_K', /got "3"/],
    ['query top_k not a number', binary(f32(good), '?top_k=abc'), 400, 'MHE_BAD_TOP_K', /got "abc"/],
    ['too many instances', json({ instances: tooMany }), 400, 'MHE_TOO_MANY_INSTANCES', /at most 16 instances per request, got 17/],
    ['NaN in a binary body', binary(f32([NaN, ...good.slice(1)])), 400, 'MHE_BAD_INSTANCE', /instance 0 value 0 is NaN/],
    ['Infinity in a binary body', binary(f32([...good, ...good.slice(1), Infinity])), 400, 'MHE_BAD_INSTANCE', /instance 1 value 7 is Infinity/],
    ['binary length not a multiple of 4d', binary(new Uint8Array(4 * d + 2)), 400, 'MHE_BAD_BINARY_BODY', /multiple of 32 bytes.*got 34 bytes/],
    ['empty binary body', binary(new Uint8Array(0)), 400, 'MHE_BAD_BINARY_BODY', /got 0 bytes/],
    ['too many binary instances', binary(f32(tooMany.flat())), 400, 'MHE_TOO_MANY_INSTANCES', /got 17/],
    ['body over the limit', json({ instances: [good], pad: 'x'.repeat(5000) }), 413, 'MHE_BODY_TOO_LARGE', /limit of 4096 bytes/],
    ['binary body over the limit', binary(new Uint8Array(4 * d * 200)), 413, 'MHE_BODY_TOO_LARGE', /limit/],
    ['JSON on /predict/binary', { ...json({ instances: [good] }), url: '/predict/binary' }, 415, 'MHE_UNSUPPORTED_MEDIA_TYPE', /must be application\/octet-stream, got application\/json/],
    ['malformed JSON on /predict/binary: refused unread', { method: 'POST', url: '/predict/binary', payload: '{', headers: { 'content-type': 'application/json' } }, 415, 'MHE_UNSUPPORTED_MEDIA_TYPE', /application\/octet-stream/],
    ['no body on /predict/binary', { method: 'POST', url: '/predict/binary' }, 415, 'MHE_UNSUPPORTED_MEDIA_TYPE', /got none/],
    ['/predict/binary: length not a multiple of 4d', binary(new Uint8Array(4 * d + 2), '', '/predict/binary'), 400, 'MHE_BAD_BINARY_BODY', /got 34 bytes/],
    ['/predict/binary: empty body', binary(new Uint8Array(0), '', '/predict/binary'), 400, 'MHE_BAD_BINARY_BODY', /got 0 bytes/],
    ['/predict/binary: NaN', binary(f32([NaN, ...good.slice(1)]), '', '/predict/binary'), 400, 'MHE_BAD_INSTANCE', /instance 0 value 0 is NaN/],
    ['/predict/binary: query top_k 0', binary(f32(good), '?top_k=0', '/predict/binary'), 400, 'MHE_BAD_TOP_K', /got 0/],
    ['/predict/binary: too many instances', binary(f32(tooMany.flat()), '', '/predict/binary'), 400, 'MHE_TOO_MANY_INSTANCES', /got 17/],
    ['/predict/binary: body over the limit', binary(new Uint8Array(4 * d * 200), '', '/predict/binary'), 413, 'MHE_BODY_TOO_LARGE', /limit/],
    ['unknown route', { method: 'GET', url: '/predictions' }, 404, 'MHE_NOT_FOUND', /GET \/predictions/],
    ['GET on /predict', { method: 'GET', url: '/predict' }, 405, 'MHE_METHOD_NOT_ALLOWED', /\/predict takes POST, not GET/],
    ['DELETE on /health/live', { method: 'DELETE', url: '/health/live' }, 405, 'MHE_METHOD_NOT_ALLOWED', /takes GET, HEAD, not DELETE/],
  ]
  for (const [name, req, status, code, message] of cases) {
    const res = await app.inject(req)
    t.equal(res.statusCode, status, `${name}: status`)
    const body = res.json()
    t.equal(body.code, code, `${name}: code`)
    t.equal(body.statusCode, status, `${name}: statusCode in body`)
    t.type(body.error, 'string', `${name}: error text`)
    t.match(body.message, message, `${name}: message`)
    if (status === 405) t.match(res.headers.allow, /^[A-Z, ]+$/, `${name}: Allow`)
  }
  t.equal((await app.inject({ method: 'PUT', url: '/predict?x=1' })).headers.allow, 'POST', 'Allow: the methods of the path')
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'still ready after all of it')
})

t.test('no tensor is leaked across many requests', async (t) => {
  const features = randomFeatures(4, d, 9)
  await app.inject(json({ instances: rows(features, 4), top_k: 3 }))
  const before = numTensors(app)
  for (let i = 0; i < 300; i++) {
    const res = await app.inject(json({ instances: rows(features, 4), top_k: 1 + (i % 30) }))
    if (res.statusCode !== 200) t.fail(`request ${i}: ${res.body}`)
  }
  t.equal(numTensors(app), before)
})

t.test('bearer tokens guard /predict when MHE_API_KEYS is set; health stays open', async (t) => {
  const secured = await testApp(t, bundle, { MHE_API_KEYS: 'alpha, beta' })
  const req = (auth?: string) => ({ ...json({ instances: [Array.from({ length: d }, () => 0)] }), headers: auth ? { authorization: auth } : {} })
  const none = await secured.inject(req())
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'MHE_UNAUTHORIZED')
  t.match(none.headers['www-authenticate'], /^Bearer/)
  t.equal((await secured.inject(req('Bearer gamma'))).statusCode, 401, 'wrong token')
  t.equal((await secured.inject(req('Basic alpha'))).statusCode, 401, 'wrong scheme')
  t.equal((await secured.inject(req('Bearer alpha'))).statusCode, 200)
  t.equal((await secured.inject(req('Bearer beta'))).statusCode, 200)
  const raw = binary(new Uint8Array(4 * d), '', '/predict/binary')
  t.equal((await secured.inject(raw)).statusCode, 401, 'predictBinary too')
  t.equal((await secured.inject({ ...raw, headers: { ...raw.headers, authorization: 'Bearer alpha' } })).statusCode, 200)
  t.equal((await secured.inject('/health/ready')).statusCode, 200)
  t.equal((await secured.inject('/model')).statusCode, 200)
})
