// Clients from four OpenAPI generators, made from the committed openapi/openapi.json as a new user would make them,
// driven against the real server process on a real port: one prediction, a batch of 3 with top_k 2, the raw
// float32 body (predictBinary), a 400 whose body arrives typed as ErrorBody through the generator's own error
// mechanism, and getModel. Type-checked strictly by test/clients/tsconfig.json (npm run typecheck).
import t, { type Test } from 'tap'
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import createFetchClient from 'openapi-fetch'
import type { components, paths } from '../../tools/client/openapi-types.js'
import { CLIENTS_DIR, GENERATORS, generateClients } from '../../tools/openapi/clients.js'
import { randomFeatures, referenceTopK } from '../helpers/bundles.js'
import { tempDir, testBundle } from '../helpers/server.js'
import { startServer } from '../helpers/process.js'
import { createClient as createHeyClient, createConfig as createHeyConfig } from '../clients/hey-api/client/index.js'
import * as hey from '../clients/hey-api/index.js'
import * as orval from '../clients/orval/client.js'
import { setOrvalBaseUrl } from '../helpers/orval-fetch.js'
import * as oazapfts from '../clients/oazapfts/client.js'

/**
 * What a generator's client cannot do with this document, each checked below to be still true (so an upgrade that
 * fixes it fails the test, and this list and the README "Clients" section get updated).
 */
const LIMITATIONS: Record<string, string> = {
  orval:
    "predictBinary cannot send a raw body: orval's fetch client JSON-encodes every body but form data and text, " +
    'a Blob too (it arrives as "{}", and the server answers 400 MHE_BAD_BINARY_BODY)',
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort()
}

t.test(`the clients in ${CLIENTS_DIR}/ are what the generators make from openapi/openapi.json (npm run openapi)`, async (t) => {
  const dir = await tempDir(t, 'mhe-clients-')
  // The layout the generation expects: orval's fetch wrapper in ../helpers/ beside the clients folder.
  await mkdir(join(dir, 'helpers'))
  await copyFile('test/helpers/orval-fetch.ts', join(dir, 'helpers', 'orval-fetch.ts'))
  await generateClients('openapi/openapi.json', join(dir, 'clients'))
  for (const g of GENERATORS) {
    const fresh = join(dir, 'clients', g)
    const committed = join(CLIENTS_DIR, g)
    const files = await filesUnder(fresh)
    t.same(await filesUnder(committed), files, `${g}: the same files`)
    for (const f of files) {
      t.equal(await readFile(join(committed, f), 'utf8'), await readFile(join(fresh, f), 'utf8'), `${g}/${f} is fresh`)
    }
  }
})

t.test('each generated client against the real server', async (t) => {
  const d = 6
  const heads = [4, 3, 5]
  const numLabels = 55 // product 60: ids 55..59 must never come back
  const bundle = await testBundle(t, { featureDim: d, heads, numLabels, seed: 31, name: 'clients' })
  const server = await startServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm' })
  t.teardown(() => {
    server.child.kill('SIGKILL')
  })

  const features = randomFeatures(3, d, 99)
  const row = (i: number) => Array.from(features.subarray(i * d, (i + 1) * d))
  const rows = [row(0), row(1), row(2)]
  const short = [row(0).slice(1)] // one value short: 400 MHE_BAD_INSTANCE
  const blob = () => new Blob([new Float32Array(features)], { type: 'application/octet-stream' })
  const ref = (i: number, k: number) => referenceTopK(features.subarray(i * d, (i + 1) * d), bundle.weights, heads, numLabels, k)

  /** The answer to one instance (row 0) with the default top_k. */
  const checkOne = (t: Test, answer: { predictions: { label_id: number; head_ids: number[]; top_k: unknown[] }[] } | undefined) => {
    t.equal(answer?.predictions.length, 1, 'predict: one prediction')
    t.equal(answer?.predictions[0]?.label_id, ref(0, 1)[0]!.id, 'predict: the reference label')
    t.same(answer?.predictions[0]?.head_ids, ref(0, 1)[0]!.headIds, 'predict: its head ids')
    t.equal(answer?.predictions[0]?.top_k.length, 1, 'predict: top_k defaults to 1')
  }
  /** The answer to the 3 rows with top_k 2, exact against the brute-force reference. */
  const checkThree = (t: Test, what: string, answer: { predictions: { top_k: { label_id: number; score: number }[] }[] } | undefined) => {
    t.equal(answer?.predictions.length, 3, `${what}: 3 predictions`)
    answer?.predictions.forEach((p, i) => {
      const r = ref(i, 2)
      t.same(p.top_k.map((c) => c.label_id), r.map((c) => c.id), `${what}: instance ${i}, the reference top-2 ids`)
      t.ok(p.top_k.every((c, j) => Math.abs(c.score - Math.exp(r[j]!.logScore)) < 1e-5), `${what}: instance ${i}, the reference scores`)
    })
  }
  const checkModel = (t: Test, model: { name: string; featureDim: number; heads: number[]; numLabels: number } | undefined) => {
    t.match(model, { name: 'clients', featureDim: d, heads, numLabels }, 'getModel')
  }
  const checkBadInstance = (t: Test, status: number, error: { code: string; message: string } | undefined) => {
    t.equal(status, 400, '400 for an instance of the wrong length')
    t.equal(error?.code, 'MHE_BAD_INSTANCE', 'the error body, typed as ErrorBody, says MHE_BAD_INSTANCE')
    t.equal(error?.message, `instance 0 has ${d - 1} values, the model expects ${d}`)
  }

  t.test('openapi-typescript + openapi-fetch', async (t) => {
    const client = createFetchClient<paths>({ baseUrl: server.url })
    checkModel(t, (await client.GET('/model')).data)
    checkOne(t, (await client.POST('/predict', { body: { instances: [row(0)] } })).data)
    const three = await client.POST('/predict', { body: { instances: rows, top_k: 2 } })
    checkThree(t, 'predict', three.data)
    // The body is a Blob (client-types.ts maps format: binary to Blob); openapi-fetch JSON-encodes bodies unless told.
    const bin = await client.POST('/predict/binary', {
      params: { query: { top_k: 2 } },
      body: blob(),
      bodySerializer: (body) => body,
      headers: { 'content-type': 'application/octet-stream' },
    })
    checkThree(t, 'predictBinary', bin.data)
    t.same(bin.data, three.data, 'predictBinary answers what predict answers')
    const bad = await client.POST('/predict', { body: { instances: short } })
    const error: components['schemas']['ErrorBody'] | undefined = bad.error
    checkBadInstance(t, bad.response.status, error)
  })

  t.test('@hey-api/openapi-ts (fetch client)', async (t) => {
    const client = createHeyClient(createHeyConfig({ baseUrl: server.url }))
    checkModel(t, (await hey.getModel({ client })).data)
    checkOne(t, (await hey.predict({ client, body: { instances: [row(0)] } })).data)
    const three = await hey.predict({ client, body: { instances: rows, top_k: 2 } })
    checkThree(t, 'predict', three.data)
    const bin = await hey.predictBinary({ client, body: blob(), query: { top_k: 2 } })
    checkThree(t, 'predictBinary', bin.data)
    t.same(bin.data, three.data, 'predictBinary answers what predict answers')
    const bad = await hey.predict({ client, body: { instances: short } })
    const error: hey.ErrorBody | undefined = bad.error
    checkBadInstance(t, bad.response.status, error)
  })

  t.test('orval (fetch client)', async (t) => {
    setOrvalBaseUrl(server.url)
    const model = await orval.getModel()
    checkModel(t, model.status === 200 ? model.data : undefined)
    const one = await orval.predict({ instances: [row(0)] })
    checkOne(t, one.status === 200 ? one.data : undefined)
    const three = await orval.predict({ instances: rows, top_k: 2 })
    checkThree(t, 'predict', three.status === 200 ? three.data : undefined)
    // Not supported (LIMITATIONS): checked, so that a fixed orval shows up here.
    t.comment(`orval: ${LIMITATIONS.orval}`)
    const bin = await orval.predictBinary(blob(), { top_k: 2 })
    t.equal(bin.status, 400, 'orval: predictBinary still cannot send a raw body (see LIMITATIONS)')
    t.equal(bin.status === 400 ? bin.data.code : undefined, 'MHE_BAD_BINARY_BODY', 'orval: the Blob arrived JSON-encoded')
    const bad = await orval.predict({ instances: short })
    // Narrowing on the status is orval's error mechanism: every error status of predict carries an ErrorBody.
    const error: orval.ErrorBody | undefined = bad.status === 200 ? undefined : bad.data
    checkBadInstance(t, bad.status, error)
  })

  t.test('oazapfts', async (t) => {
    const opts = { baseUrl: server.url }
    const model = await oazapfts.getModel(opts)
    checkModel(t, model.status === 200 ? model.data : undefined)
    const one = await oazapfts.predict({ instances: [row(0)] }, opts)
    checkOne(t, one.status === 200 ? one.data : undefined)
    const three = await oazapfts.predict({ instances: rows, top_k: 2 }, opts)
    checkThree(t, 'predict', three.status === 200 ? three.data : undefined)
    // oazapfts sends the Blob as it is and sets no Content-Type itself: fetch takes it from the Blob's type.
    const bin = await oazapfts.predictBinary(blob(), { topK: 2 }, opts)
    checkThree(t, 'predictBinary', bin.status === 200 ? bin.data : undefined)
    t.same(bin.data, three.data, 'predictBinary answers what predict answers')
    const bad = await oazapfts.predict({ instances: short }, opts)
    const error: oazapfts.ErrorBody | undefined = bad.status === 200 ? undefined : bad.data
    checkBadInstance(t, bad.status, error)
  })
})
