// End to end: the real server process on a real port, called through the client generated from
// openapi/openapi.json (openapi-fetch + openapi-typescript types), answers checked against a plain-loop reference.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import createClient from 'openapi-fetch'
import type { paths } from '../../tools/client/openapi-types.js'
import { generateOpenApi } from '../../tools/openapi/generate.js'
import { clientTypes } from '../../tools/openapi/client-types.js'
import { randomFeatures, referenceTopK } from '../helpers/bundles.js'
import { testBundle, tempDir } from '../helpers/server.js'
import { runFailingServer, startServer } from '../helpers/process.js'

t.test('openapi/openapi.json and the client types are what the server generates (npm run openapi)', async (t) => {
  const committed = await readFile('openapi/openapi.json', 'utf8')
  const generated = JSON.stringify(await generateOpenApi(), null, 2) + '\n'
  t.equal(committed, generated, 'run `npm run openapi` after changing a route or schema')
  t.equal(await readFile('tools/client/openapi-types.ts', 'utf8'), await clientTypes(committed), 'client types are fresh')
  const doc = JSON.parse(committed)
  const operations = Object.entries(doc.paths as Record<string, Record<string, { operationId: string; requestBody?: { content: object } }>>)
    .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => `${method.toUpperCase()} ${path} ${op.operationId}`))
  t.same(operations.sort(), [
    'GET /health/live getLiveness',
    'GET /health/ready getReadiness',
    'GET /metrics getMetrics',
    'GET /model getModel',
    'GET /v2 v2ServerMetadata',
    'GET /v2/health/live v2ServerLive',
    'GET /v2/health/ready v2ServerReady',
    'GET /v2/models/{name} v2ModelMetadata',
    'GET /v2/models/{name}/ready v2ModelReady',
    'GET /v2/models/{name}/versions/{version} v2ModelVersionMetadata',
    'GET /v2/models/{name}/versions/{version}/ready v2ModelVersionReady',
    'POST /predict predict',
    'POST /predict/binary predictBinary',
    'POST /v2/models/{name}/infer v2ModelInfer',
    'POST /v2/models/{name}/versions/{version}/infer v2ModelVersionInfer',
  ], 'every operation, with its operationId')
  t.same(Object.keys(doc.paths['/predict'].post.requestBody.content), ['application/json'], 'predict: JSON only in the document')
  t.same(Object.keys(doc.paths['/predict/binary'].post.requestBody.content), ['application/octet-stream'], 'predictBinary: raw float32 only')
})

t.test('the real server process, through the generated client', async (t) => {
  const d = 6
  const heads = [4, 3, 5]
  const numLabels = 55 // product 60: ids 55..59 must never come back
  const bundle = await testBundle(t, { featureDim: d, heads, numLabels, seed: 21, name: 'e2e' })
  const server = await startServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'auto', MHE_MAX_TOP_K: '20' })
  t.teardown(() => {
    server.child.kill('SIGKILL')
  })
  const client = createClient<paths>({ baseUrl: server.url })

  const info = await client.GET('/model')
  t.equal(info.response.status, 200)
  t.match(info.data, { name: 'e2e', featureDim: d, heads, numLabels, backend: 'wasm' }, 'auto picks wasm where tfjs-node cannot install')

  const features = randomFeatures(9, d, 77)
  const row = (i: number) => Array.from(features.subarray(i * d, (i + 1) * d))

  const single = await client.POST('/predict', { body: { instances: [row(0)] } })
  t.equal(single.response.status, 200)
  const ref0 = referenceTopK(features.subarray(0, d), bundle.weights, heads, numLabels, 1)[0]!
  t.equal(single.data?.predictions[0]?.label_id, ref0.id, 'single prediction')
  t.same(single.data?.predictions[0]?.head_ids, ref0.headIds)
  t.equal(single.data?.predictions[0]?.top_k.length, 1, 'default top_k is 1')

  const batched = await client.POST('/predict', { body: { instances: Array.from({ length: 9 }, (_, i) => row(i)), top_k: 7 } })
  t.equal(batched.response.status, 200)
  t.equal(batched.data?.predictions.length, 9)
  batched.data?.predictions.forEach((p, i) => {
    const ref = referenceTopK(features.subarray(i * d, (i + 1) * d), bundle.weights, heads, numLabels, 7)
    t.same(p.top_k.map((c) => c.label_id), ref.map((r) => r.id), `instance ${i}: exact top-7 ids`)
    t.ok(p.top_k.every((c, j) => Math.abs(c.score - Math.exp(ref[j]!.logScore)) < 1e-5), `instance ${i}: scores`)
  })

  const bin = await client.POST('/predict/binary', {
    params: { query: { top_k: 7 } },
    body: new Blob([new Float32Array(features)]),
    bodySerializer: (body) => body,
    headers: { 'content-type': 'application/octet-stream' },
  })
  t.equal(bin.response.status, 200)
  t.same(bin.data, batched.data, 'raw float32 body answers exactly what JSON answers')
  // POST /predict still takes raw float32 bodies, as before predictBinary (README); the document shows only JSON there.
  const legacy = await fetch(`${server.url}/predict?top_k=7`, { method: 'POST', body: new Float32Array(features), headers: { 'content-type': 'application/octet-stream' } })
  t.same(await legacy.json(), batched.data, 'POST /predict with a raw float32 body: the same answer')

  const bad = await client.POST('/predict', { body: { instances: [row(0).slice(1)] } })
  t.equal(bad.response.status, 400)
  t.match(bad.error, { code: 'MHE_BAD_INSTANCE', message: 'instance 0 has 5 values, the model expects 6' })

  const ready = await client.GET('/health/ready')
  t.same(ready.data, { status: 'ready' })
  const docs = await fetch(`${server.url}/docs`, { redirect: 'follow' })
  t.equal(docs.status, 200, 'Swagger UI is served')

  // Logs carry request ids and never the feature vectors.
  t.match(server.output(), /"reqId":"[0-9a-f-]{36}"/)
  t.notMatch(server.output(), String(row(0)[0]), 'no feature value in the logs')

  server.child.kill('SIGTERM')
  const exit = await server.exit
  t.equal(exit.code, 0, 'SIGTERM drains and exits 0')
})

t.test('start-up failures: one clear line and a non-zero exit', async (t) => {
  const dir = await tempDir(t)
  const missing = await runFailingServer({ MHE_MODEL: `${dir}/nothing-here` })
  t.equal(missing.code, 1)
  t.match(missing.output, /no model bundle at .*nothing-here \(mhe\.json missing\).*npm run train/)
  const badEnv = await runFailingServer({ MHE_MAX_BATCH: 'lots' })
  t.equal(badEnv.code, 1)
  t.match(badEnv.output, /MHE_MAX_BATCH must be an integer >= 1 or auto, got "lots"/)
  const badFlag = await runFailingServer({}, ['--backend', 'gpu'])
  t.equal(badFlag.code, 1)
  t.match(badFlag.output, /MHE_BACKEND must be one of auto, tensorflow, webgpu, wasm, cpu, got "gpu"/)
})
