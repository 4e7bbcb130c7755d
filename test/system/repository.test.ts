// The model repository in the real process on a real port: a new version swapped in under concurrent load with no
// failed request and every answer computed by the version it names; a broken version refused while the old one
// serves; two models side by side; unload waiting for the requests in flight; polling; the control endpoints'
// tokens. Each step waits for what it needs (a count of answers, an answer to a control request), never a span of time.
import t from 'tap'
import { readFile, writeFile, mkdir, cp } from 'node:fs/promises'
import { join } from 'node:path'
import { randomFeatures } from '../helpers/bundles.js'
import { startServer, until } from '../helpers/process.js'
import { addVersion, tempRepository, versionOfLabel } from '../helpers/repository.js'

const ADMIN = 'system-admin'
const A = { featureDim: 32, heads: [20, 20], numLabels: 400 }
const B = { featureDim: 16, heads: [10], numLabels: 10 }
const body = (d: number, n = 1) => JSON.stringify({ instances: Array.from({ length: n }, (_, i) => Array.from(randomFeatures(1, d, i + 1))), top_k: 3 })

interface Outcome {
  status: number
  model?: string
  version?: string
  /** Versions named by the labels of the answer (each label says which version's labels.txt it is from). */
  labelVersions: (number | undefined)[]
  sentAt: number
  error?: string
}

async function post(url: string, payload: string, model: string): Promise<Outcome> {
  const sentAt = performance.now()
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload, signal: AbortSignal.timeout(30_000) })
    const json = (await res.json()) as { model_version?: string; model?: string; predictions?: { top_k: { label: string }[] }[] }
    return {
      status: res.status,
      model: json.model,
      version: json.model_version ?? undefined,
      labelVersions: (json.predictions ?? []).flatMap((p) => p.top_k.map((c) => versionOfLabel(model, c.label))),
      sentAt,
    }
  } catch (err) {
    return { status: 0, labelVersions: [], sentAt, error: String((err as { cause?: unknown }).cause ?? err) }
  }
}

/** `n` clients each sending one request after another until stop() is called; every outcome is kept. */
function loadLoop(n: number, send: (i: number) => Promise<Outcome>) {
  const outcomes: Outcome[] = []
  let stopped = false
  const clients = Array.from({ length: n }, async (_, i) => {
    while (!stopped) outcomes.push(await send(i))
  })
  return { outcomes, stop: async () => ((stopped = true), await Promise.all(clients)) }
}

const control = (url: string, token: string | null, payload?: string) =>
  fetch(url, { method: 'POST', headers: token === null ? {} : { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { body: payload }) })

t.test('a swap under load at c=32: no failed request, each answer from the version it names; a broken version refused', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  await addVersion(repo, 'b', 1, B)
  const server = await startServer({ MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', MHE_ADMIN_KEYS: ADMIN, MHE_DEFAULT_MODEL: 'a' })
  t.teardown(() => server.child.kill('SIGKILL'))

  // The control endpoints: a token of MHE_ADMIN_KEYS or 401; a body without Content-Type read as JSON.
  for (const token of [null, 'wrong']) {
    const res = await control(`${server.url}/v2/repository/models/a/load`, token)
    t.equal(res.status, 401, `load with ${token ?? 'no token'}: 401`)
    t.same(Object.keys((await res.json()) as object), ['error'])
  }
  const index = await control(`${server.url}/v2/repository/index`, ADMIN, '{"ready": true}')
  t.same(await index.json(), [{ name: 'a', version: '1', state: 'READY', reason: '' }, { name: 'b', version: '1', state: 'READY', reason: '' }])

  const aBody = body(A.featureDim)
  const bBody = body(B.featureDim)
  // Clients alternate between the default model (a, through /predict) and b by name: two models side by side.
  const loop = loadLoop(32, (i) => (i % 4 === 3 ? post(`${server.url}/models/b/predict`, bBody, 'b') : post(`${server.url}/predict`, aBody, 'a')))
  const count = (pred: (o: Outcome) => boolean) => loop.outcomes.filter(pred).length
  await until('300 answers before the swap', () => loop.outcomes.length >= 300, server.output)

  await addVersion(repo, 'a', 2, A)
  const loaded = await control(`${server.url}/v2/repository/models/a/load`, ADMIN)
  const loadAnsweredAt = performance.now()
  t.equal(loaded.status, 200)
  t.same(await loaded.json(), { name: 'a', loaded: ['2'], unloaded: ['1'], serving: '2' }, 'answered once version 2 serves and version 1 is unloaded')

  // A broken version 3 (its model file is not JSON): refused, with the file named, while version 2 serves on.
  const dir3 = join(repo, 'a', '3')
  await cp(join(repo, 'a', '2'), dir3, { recursive: true })
  await writeFile(join(dir3, 'model.json'), '{"modelTopology": ')
  const refused = await control(`${server.url}/v2/repository/models/a/load`, ADMIN)
  t.equal(refused.status, 422)
  t.match(((await refused.json()) as { error: string }).error, `version 3: ${join(dir3, 'model.json')}: is not valid JSON`)
  const afterRefusal = loop.outcomes.length
  await until('300 answers after the refusal', () => loop.outcomes.length >= afterRefusal + 300, server.output)
  await loop.stop()

  const all = loop.outcomes
  const failed = all.filter((o) => o.status !== 200)
  t.same(failed.slice(0, 5), [], `no failed request among ${all.length}`)
  const a = all.filter((o) => o.model === 'a')
  t.ok(a.every((o) => o.labelVersions.length === 3 && o.labelVersions.every((v) => String(v) === o.version)), 'every answer of a computed by the version it names')
  t.ok(all.filter((o) => o.model === 'b').every((o) => o.version === '1' && o.labelVersions.every((v) => v === 1)), 'b answered by its version 1 throughout')
  t.ok(count((o) => o.model === 'b') > 0, 'b served beside a')
  t.ok(a.some((o) => o.version === '1') && a.some((o) => o.version === '2'), 'both versions of a answered')
  const late = a.filter((o) => o.sentAt > loadAnsweredAt)
  t.ok(late.length > 0 && late.every((o) => o.version === '2'), `every request sent after the load answered went to version 2 (${late.length})`)
  t.match(server.output(), /"model":"a","version":1[^\n]*"model version unloaded"/, 'version 1 was unloaded')
  t.match(server.output(), /"model":"a","version":3[^\n]*model version failed to load/, 'the refusal is logged with the version')

  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  t.match(metrics, /mhe_model_serving_version\{model="a"\} 2/)
  t.match(metrics, /mhe_model_load_failures_total\{model="a",version="3"\} 1/)
  t.notMatch(metrics, /mhe_model_requests_total\{model="a",version="1"/, 'the unloaded version exports no series')
  t.match(metrics, /mhe_model_requests_total\{model="a",version="2",status="200"\} [1-9]/)
})

t.test('unload under load waits for the requests in flight: each gets its answer, later ones 404', async (t) => {
  const repo = await tempRepository(t)
  const heavy = { featureDim: 128, heads: [64, 64], numLabels: 4096 }
  await addVersion(repo, 'h', 1, heavy)
  await addVersion(repo, 'b', 1, B)
  // Requests wait up to 20 ms for company in the batcher (batches of up to all 16 clients), so that some are in flight
  // whenever the unload comes: a fast server otherwise spends most of the time waiting for this process's clients.
  const server = await startServer({ MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', MHE_ADMIN_KEYS: ADMIN, MHE_MAX_BATCH: '1024', MHE_MAX_DELAY_MS: '20' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const payload = body(heavy.featureDim, 64) // batches that take a while, so requests are in flight when unload comes
  const loop = loadLoop(16, () => post(`${server.url}/models/h/predict?version=1`, payload, 'h'))
  await until('100 answers', () => loop.outcomes.length >= 100, server.output)
  const unloadSentAt = performance.now()
  const unloaded = await control(`${server.url}/v2/repository/models/h/unload`, ADMIN)
  const unloadAnsweredAt = performance.now()
  const before = loop.outcomes.length
  await until('50 answers after the unload', () => loop.outcomes.length >= before + 50, server.output)
  await loop.stop()
  t.equal(unloaded.status, 200)
  t.same(await unloaded.json(), { name: 'h', loaded: [], unloaded: ['1'] })
  const statuses = new Set(loop.outcomes.map((o) => o.status))
  t.same([...statuses].sort(), [200, 404], 'answers, then 404 once unloaded: nothing else (no 5xx, no reset connection)')
  t.ok(loop.outcomes.filter((o) => o.sentAt > unloadAnsweredAt).every((o) => o.status === 404), 'sent after the unload answered: 404')
  t.ok(loop.outcomes.filter((o) => o.status === 200).every((o) => o.sentAt < unloadAnsweredAt), 'every answer was to a request sent before')
  t.ok(loop.outcomes.some((o) => o.status === 200 && o.sentAt > unloadSentAt - 1000), 'requests of the last moments before the unload were answered')
  const m = /"inFlight":(\d+)[^\n]*"model version unloaded"/.exec(server.output())
  t.ok(m && Number(m[1]) > 0, `requests were in flight when the unload began (${m?.[1]}), and were answered (200) before it finished`)
  t.equal((await post(`${server.url}/models/b/predict`, body(B.featureDim), 'b')).status, 200, 'the other model serves on')
})

t.test('polling picks up a version once its manifest, written last, is there', async (t) => {
  const repo = await tempRepository(t)
  const v1 = await addVersion(repo, 'a', 1, B)
  const server = await startServer({ MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', MHE_REPOSITORY_POLL_S: '1' })
  t.teardown(() => server.child.kill('SIGKILL'))
  // Files first, manifest last, in place (as documented).
  const dir2 = join(repo, 'a', '2')
  await mkdir(dir2)
  for (const f of ['model.json', 'weights.bin', 'labels.txt']) await writeFile(join(dir2, f), await readFile(join(v1.dir, f)))
  const version = async () => ((await (await fetch(`${server.url}/model`)).json()) as { model_version: string }).model_version
  t.equal(await version(), '1')
  await writeFile(join(dir2, 'mhe.json'), await readFile(join(v1.dir, 'mhe.json')))
  await until('version 2 to serve', async () => (await version()) === '2', server.output)
  t.notMatch(server.output(), /failed to load/, 'never tried before it was complete')
  t.equal((await post(`${server.url}/predict`, body(B.featureDim), 'a')).version, '2')
})
