// Many models and versions in one process (app.inject, the real engine): addressing by name and version, answers
// naming the version that computed them, loading a new version, refusing a broken one, unload waiting for the
// requests that hold a version, polling that waits for complete folders, and the control endpoints' tokens.
import t from 'tap'
import { writeFile, readFile, rm, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/http/app.js'
import { LIGHT_TRAFFIC_BATCHES, SplitEngine } from '../../src/engine/split-engine.js'
import { LabelStore } from '../../src/bundle/labels.js'
import { loadConfig } from '../../src/config.js'
import { randomFeatures } from '../helpers/bundles.js'
import { addVersion, copyVersion, tempRepository, versionOfLabel, writePolicy } from '../helpers/repository.js'

const A = { featureDim: 8, heads: [4, 4], numLabels: 16 }
const B = { featureDim: 6, heads: [5], numLabels: 5 }
const ADMIN = 'admin-token'

async function repoApp(t: { teardown(fn: () => unknown): void }, repo: string, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildApp(
    loadConfig({ MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent', MHE_MAX_EVENT_LOOP_DELAY_MS: '0', MHE_ADMIN_KEYS: ADMIN, ...env }),
  )
  t.teardown(() => app.close())
  return app
}

const row = (d: number, seed = 1) => Array.from(randomFeatures(1, d, seed))
const predict = (app: FastifyInstance, url: string, d: number) =>
  app.inject({ method: 'POST', url, payload: { instances: [row(d)], top_k: 2 } })
/** A control request with `token` (null: without an Authorization header). */
const admin = (app: FastifyInstance, url: string, token: string | null = ADMIN, payload?: object) =>
  app.inject({ method: 'POST', url, headers: token === null ? {} : { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload }) })

interface Answer {
  model: string
  model_version: string
  predictions: { label: string; top_k: { label: string }[] }[]
}

t.test('two models side by side; the default model; pinned versions; answers name their version', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  await addVersion(repo, 'a', 2, A)
  await writePolicy(repo, 'a', { all: true })
  await addVersion(repo, 'b', 3, B)
  const app = await repoApp(t, repo, { MHE_DEFAULT_MODEL: 'b' })

  const list = (await app.inject('/models')).json() as { models: { name: string; default: boolean; serving?: string; versions: { version: string; state: string }[] }[] }
  t.same(list.models.map((m) => [m.name, m.default, m.serving, m.versions.map((v) => `${v.version}:${v.state}`)]), [
    ['a', false, '2', ['1:ready', '2:ready']],
    ['b', true, '3', ['3:ready']],
  ])

  const byDefault = await predict(app, '/predict', B.featureDim)
  t.equal(byDefault.statusCode, 200)
  t.equal(byDefault.headers['x-mhe-model'], 'b')
  t.equal(byDefault.headers['x-mhe-model-version'], '3')
  const ans = byDefault.json() as Answer
  t.equal(ans.model, 'b')
  t.equal(ans.model_version, '3')
  t.equal(versionOfLabel('b', ans.predictions[0]!.label), 3, 'the label comes from version 3')

  const latest = (await predict(app, '/models/a/predict', A.featureDim)).json() as Answer
  t.equal(latest.model_version, '2', 'unpinned: the newest ready version')
  t.ok(latest.predictions[0]!.top_k.every((c) => versionOfLabel('a', c.label) === 2))
  const pinned = (await predict(app, '/models/a/predict?version=1', A.featureDim)).json() as Answer
  t.equal(pinned.model_version, '1')
  t.ok(pinned.predictions[0]!.top_k.every((c) => versionOfLabel('a', c.label) === 1))

  const f = randomFeatures(1, A.featureDim, 1)
  const bin = await app.inject({ method: 'POST', url: '/models/a/predict/binary?version=1&top_k=2', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from(f.buffer) })
  t.equal(bin.statusCode, 200)
  t.same((bin.json() as Answer).predictions, pinned.predictions, 'binary and JSON: the same answer from the same version')

  t.equal((await predict(app, '/models/a/predict?version=7', A.featureDim)).json().code, 'MHE_MODEL_NOT_FOUND')
  const unknown = await predict(app, '/models/zzz/predict', A.featureDim)
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json().message, /unknown model "zzz" \(served: a, b\)/)
  t.equal((await predict(app, '/models/a/predict?version=0', A.featureDim)).statusCode, 400, 'version must be a positive integer')
  const wrongDim = await predict(app, '/models/a/predict', B.featureDim)
  t.equal(wrongDim.statusCode, 400)
  t.match(wrongDim.json().message, /the model expects 8/, 'each model checks its own featureDim')

  const meta = (await app.inject('/models/a?version=1')).json() as { name: string; model_version: string; featureDim: number }
  t.same([meta.name, meta.model_version, meta.featureDim], ['a', '1', 8])
  t.equal(((await app.inject('/model')).json() as { name: string }).name, 'b', 'GET /model: the default model')

  // The Open Inference Protocol addresses the same models and versions by path.
  const v2 = (await app.inject('/v2/models/a')).json() as { name: string; versions: string[] }
  t.same([v2.name, v2.versions], ['a', ['1', '2']])
  const v2infer = async (url: string) => {
    const res = await app.inject({ method: 'POST', url, payload: { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, A.featureDim], data: row(A.featureDim) }], outputs: [{ name: 'labels' }], parameters: { top_k: 2 } } })
    t.equal(res.statusCode, 200, url)
    const out = res.json() as { model_name: string; model_version: string; outputs: { data: string[] }[] }
    t.equal(res.headers['x-mhe-model-version'], out.model_version)
    return { version: out.model_version, labelVersions: out.outputs[0]!.data.map((l) => versionOfLabel('a', l)) }
  }
  t.same(await v2infer('/v2/models/a/infer'), { version: '2', labelVersions: [2, 2] }, 'V2: the newest ready version')
  t.same(await v2infer('/v2/models/a/versions/1/infer'), { version: '1', labelVersions: [1, 1] }, 'V2: the version the path names')
  t.equal((await app.inject('/v2/models/a/versions/1/ready')).json().ready, true)
  t.equal((await app.inject('/v2/models/a/versions/3/ready')).statusCode, 404)
})

t.test('several models and no MHE_DEFAULT_MODEL: /predict says to name one', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  await addVersion(repo, 'b', 1, B)
  const app = await repoApp(t, repo)
  const res = await predict(app, '/predict', A.featureDim)
  t.equal(res.statusCode, 404)
  t.match(res.json().message, /serves several models \(a, b\): name one/)
  t.equal((await predict(app, '/models/b/predict', B.featureDim)).statusCode, 200)
})

t.test('MHE_DEFAULT_MODEL naming no model stops start-up with the models there', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  await t.rejects(repoApp(t, repo, { MHE_DEFAULT_MODEL: 'nope' }), /MHE_DEFAULT_MODEL names a model the repository does not hold \(it holds: a\)/)
})

t.test('a version whose model fails to load after its labels were read holds no labels afterwards', async (t) => {
  const repo = await tempRepository(t)
  const v1 = await addVersion(repo, 'a', 1, A)
  const app = await repoApp(t, repo)
  const held = LabelStore.heldStores()
  // Version 2: labels of its own (the same count), and a weight file cut short, which only the engine refuses.
  const dir2 = await copyVersion(v1.dir, repo, 'a', 2)
  const labels = (await readFile(join(dir2, 'labels.txt'), 'utf8')).split('\n').filter(Boolean)
  await writeFile(join(dir2, 'labels.txt'), labels.map((l) => `other-${l}`).join('\n') + '\n')
  await truncate(join(dir2, 'weights.bin'), 100)
  const refused = await admin(app, '/v2/repository/models/a/load')
  t.equal(refused.statusCode, 422)
  t.match(refused.json().error, /weights\.bin/)
  t.equal(LabelStore.heldStores(), held, 'the labels it read were released')
  t.equal((await predict(app, '/predict', A.featureDim)).json().model_version, '1')
})

t.test('load: a new version switches new requests; a broken one is refused with the file named, the old one serves', async (t) => {
  const repo = await tempRepository(t)
  const v1 = await addVersion(repo, 'a', 1, A)
  const app = await repoApp(t, repo)
  t.equal((await predict(app, '/predict', A.featureDim)).json().model_version, '1')

  // Version 2: a copy of version 1 whose labels file is one line short.
  const dir2 = await copyVersion(v1.dir, repo, 'a', 2)
  const labels = (await readFile(join(dir2, 'labels.txt'), 'utf8')).split('\n').filter(Boolean)
  await writeFile(join(dir2, 'labels.txt'), labels.slice(1).join('\n') + '\n')
  const refused = await admin(app, '/v2/repository/models/a/load')
  t.equal(refused.statusCode, 422)
  t.match(refused.json().error, `${join(dir2, 'labels.txt')}: has 15 labels (lines), mhe.json "numLabels" is 16`)
  t.match(refused.json().error, /version 1 still serves/)
  t.equal((await predict(app, '/predict', A.featureDim)).json().model_version, '1', 'version 1 still answers')
  const status = (await app.inject('/models')).json() as { models: { versions: { version: string; state: string; reason?: string }[] }[] }
  t.match(status.models[0]!.versions, [{ version: '1', state: 'ready' }, { version: '2', state: 'failed', reason: /labels\.txt/ }])

  // Fixed: the same request loads it, and new requests go to it at once; version 1 (latest 1) is unloaded.
  await rm(dir2, { recursive: true })
  await addVersion(repo, 'a', 2, A)
  const loaded = await admin(app, '/v2/repository/models/a/load', ADMIN, {})
  t.equal(loaded.statusCode, 200)
  t.same(loaded.json(), { name: 'a', loaded: ['2'], unloaded: ['1'], serving: '2' })
  const after = (await predict(app, '/predict', A.featureDim)).json() as Answer
  t.equal(after.model_version, '2')
  t.equal(versionOfLabel('a', after.predictions[0]!.label), 2)
  t.equal((await predict(app, '/models/a/predict?version=1', A.featureDim)).statusCode, 404, 'version 1 is gone')

  const index = await admin(app, '/v2/repository/index')
  t.same(index.json(), [{ name: 'a', version: '2', state: 'READY', reason: '' }])
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /mhe_model_load_failures_total\{model="a",version="2"\} 1/)
  t.match(metrics, /mhe_model_serving_version\{model="a"\} 2/)
  t.notMatch(metrics, /mhe_model_info\{[^}]*model_version="1"/, 'model info only for loaded versions')
  // Version 1 served requests and is unloaded, version 2 failed once before it loaded: neither exports its series,
  // except the failure count; version 2's are there.
  for (const name of ['mhe_model_requests_total', 'mhe_model_request_duration_seconds_count', 'mhe_batch_size_count', 'mhe_queue_wait_seconds_count', 'mhe_batch_compute_seconds_count', 'mhe_model_load_seconds']) {
    t.notMatch(metrics, new RegExp(`^${name}\\{model="a",version="1"`, 'm'), `no ${name} for the unloaded version`)
    t.match(metrics, new RegExp(`^${name}\\{model="a",version="2"`, 'm'), `${name} for the serving version`)
  }
})

t.test('unload: the version leaves service at once and is freed only once the requests holding it are answered', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  await addVersion(repo, 'b', 1, B)
  const app = await repoApp(t, repo)
  const held = app.mhe.models.acquire('a') // a request that picked version 1 and is not answered yet
  let done = false
  const unloading = Promise.resolve(admin(app, '/v2/repository/models/a/unload')).then((res) => {
    done = true
    return res
  })
  await new Promise((r) => setImmediate(r))
  t.equal(held.state, 'unloading')
  const refused = await predict(app, '/models/a/predict', A.featureDim)
  t.equal(refused.statusCode, 404, 'new requests are refused at once')
  t.match(refused.json().message, /model "a" is unloaded/)
  t.notOk(done, 'the unload waits for the request that holds the version')
  // The held request can still compute on its version.
  const out = await held.loaded.batcher.submit([{ features: randomFeatures(1, A.featureDim, 3), k: 1 }])
  t.equal(out.length, 1)
  held.release()
  const res = await unloading
  t.equal(res.statusCode, 200)
  t.same(res.json(), { name: 'a', loaded: [], unloaded: ['1'] })
  await t.rejects(held.loaded.engine.predict(new Float32Array(A.featureDim), 1, [1]), /disposed/, 'its engine was freed')
  t.equal((await predict(app, '/models/b/predict', B.featureDim)).statusCode, 200, 'the other model serves on')
  t.equal((await admin(app, '/v2/repository/models/a/unload')).statusCode, 404, 'unloading again: not loaded')
  t.same((await admin(app, '/v2/repository/index', ADMIN, { ready: true })).json(), [{ name: 'b', version: '1', state: 'READY', reason: '' }])
  // Loaded again on request.
  t.equal((await admin(app, '/v2/repository/models/a/load')).statusCode, 200)
  t.equal((await predict(app, '/models/a/predict', A.featureDim)).statusCode, 200)
})

t.test('polling: a version loads once complete; a removed folder unloads; a failure is retried only once the files change', async (t) => {
  const repo = await tempRepository(t)
  const v1 = await addVersion(repo, 'a', 1, A)
  const app = await repoApp(t, repo)
  const models = app.mhe.models
  const serving = () => models.status().find((m) => m.name === 'a')?.serving

  // Written in place, manifest last: without mhe.json, and then with truncated weights, it is not picked up.
  const dir2 = join(repo, 'a', '2')
  await copyVersion(v1.dir, repo, 'a', 2)
  const manifest = await readFile(join(dir2, 'mhe.json'))
  const weights = await readFile(join(dir2, 'weights.bin'))
  await rm(join(dir2, 'mhe.json'))
  await models.poll()
  t.equal(serving(), 1, 'no manifest yet: not loaded')
  await writeFile(join(dir2, 'weights.bin'), weights.subarray(0, 10))
  await writeFile(join(dir2, 'mhe.json'), manifest)
  await models.poll()
  t.equal(serving(), 1, 'weights still being written: not loaded')
  t.notOk(models.status()[0]!.versions.some((v) => v.state === 'failed'), 'an incomplete folder is not a failure')
  await writeFile(join(dir2, 'weights.bin'), weights)
  await models.poll()
  t.equal(serving(), 2, 'complete: loaded and serving')
  t.same(models.status()[0]!.versions.map((v) => v.version), [2], 'version 1 unloaded (latest 1)')

  // A complete but wrong version 3 fails once, is not retried while unchanged, and is retried when changed.
  const dir3 = await copyVersion(v1.dir, repo, 'a', 3)
  const bad = JSON.parse(manifest.toString()) as { featureDim: number }
  await writeFile(join(dir3, 'mhe.json'), JSON.stringify({ ...bad, featureDim: 9 }))
  await models.poll()
  t.equal(serving(), 2)
  await models.poll()
  const failures = (await app.inject('/metrics')).body.match(/mhe_model_load_failures_total\{model="a",version="3"\} (\d+)/)
  t.equal(failures?.[1], '1', 'tried once while unchanged')
  await writeFile(join(dir3, 'mhe.json'), manifest)
  await models.poll()
  t.equal(serving(), 3, 'fixed: loaded')

  // The model folder removed: unloaded.
  await rm(join(repo, 'a'), { recursive: true })
  await models.poll()
  t.equal(serving(), undefined)
  t.equal((await predict(app, '/models/a/predict', A.featureDim)).statusCode, 404)
})

t.test('the control endpoints: off without MHE_ADMIN_KEYS, 401 without or with a wrong token, not the API keys', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  const off = await repoApp(t, repo, { MHE_ADMIN_KEYS: '', MHE_API_KEYS: 'api' })
  for (const url of ['/v2/repository/index', '/v2/repository/models/a/load', '/v2/repository/models/a/unload']) {
    t.equal((await admin(off, url, 'api')).statusCode, 404, `${url} does not exist without MHE_ADMIN_KEYS`)
  }
  const on = await repoApp(t, repo, { MHE_API_KEYS: 'api' })
  for (const url of ['/v2/repository/index', '/v2/repository/models/a/load', '/v2/repository/models/a/unload']) {
    for (const token of [null, 'wrong', 'api']) {
      const res = await admin(on, url, token)
      t.equal(res.statusCode, 401, `${url} with ${token ?? 'no token'}`)
      t.match(res.headers['www-authenticate'], /^Bearer/)
      t.match(res.json(), { error: /Bearer/ }, 'the protocol\'s error shape')
    }
  }
  t.equal((await predict(on, '/models/a/predict', A.featureDim)).statusCode, 401, 'predictions take the API keys')
  t.match((await on.inject('/v2')).json(), { extensions: ['classification', 'binary_tensor_data', 'model_repository'] }, 'V2 metadata names the extension')
  t.notOk(((await off.inject('/v2')).json() as { extensions: string[] }).extensions.includes('model_repository'), 'and not without MHE_ADMIN_KEYS')
  t.equal((await admin(on, '/v2/repository/models/nope/load')).statusCode, 404)
  const badBody = await on.inject({ method: 'POST', url: '/v2/repository/index', headers: { authorization: `Bearer ${ADMIN}` }, payload: '{"ready": ' })
  t.equal(badBody.statusCode, 400)
  t.match(badBody.json(), { error: /not valid JSON/ })
})

t.test('policy: latest N and specific; a bad policy file is named and leaves other models serving', async (t) => {
  const repo = await tempRepository(t)
  for (const v of [1, 2, 3]) await addVersion(repo, 'a', v, A)
  await writePolicy(repo, 'a', { latest: 2 })
  for (const v of [1, 2]) await addVersion(repo, 'b', v, B)
  await writePolicy(repo, 'b', { specific: [1] })
  await addVersion(repo, 'c', 1, B)
  await writePolicy(repo, 'c', { newest: 1 })
  const app = await repoApp(t, repo)
  const list = (await app.inject('/models')).json() as { models: { name: string; serving?: string; versions: { version: string; state: string }[] }[] }
  t.same(list.models.map((m) => [m.name, m.serving, m.versions.map((v) => v.version)]), [
    ['a', '3', ['2', '3']],
    ['b', '1', ['1']],
    ['c', undefined, []],
  ])
  const load = await admin(app, '/v2/repository/models/c/load')
  t.equal(load.statusCode, 422)
  t.match(load.json().error, `${join(repo, 'c', 'policy.json')}: expected one of {"latest": N}, {"all": true}, {"specific": [versions]}, got the key "newest"`)
})

t.test('the copy for small batches: made at start-up for every model, after light traffic for a version swapped in', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  await addVersion(repo, 'b', 3, B)
  const app = await repoApp(t, repo)
  await app.mhe.start()
  const inline = (model: string, version: number): boolean | undefined => {
    const v = app.mhe.models.loadedVersions().find((s) => s.model === model && s.version === version)
    return v === undefined ? undefined : (v.loaded.engine as SplitEngine).inline
  }
  t.same([inline('a', 1), inline('b', 3)], [true, true], 'nothing was served while they loaded: both made it at once')
  await addVersion(repo, 'a', 2, A)
  t.equal((await admin(app, '/v2/repository/models/a/load')).statusCode, 200)
  t.equal(inline('a', 2), false, 'swapped in while a and b serve: not yet')
  for (let i = 0; i < LIGHT_TRAFFIC_BATCHES; i++) t.equal((await predict(app, '/models/a/predict', A.featureDim)).statusCode, 200)
  await (app.mhe.models.loadedVersions().find((s) => s.model === 'a' && s.version === 2)!.loaded.engine as SplitEngine).copied()
  t.equal(inline('a', 2), true, 'made once single requests came')
})
