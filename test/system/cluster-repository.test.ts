// The repository's control requests with MHE_WORKERS=2: a load, unload or index sent to one worker applies to both
// (the primary relays it and answers once both have), a version that fails to load is refused naming the worker, and
// each worker is seen to serve what the last request asked. Real processes on a real port.
import t from 'tap'
import { request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startServer, until } from '../helpers/process.js'
import { addVersion, tempRepository } from '../helpers/repository.js'

const ADMIN = 'cluster-admin'
const A = { featureDim: 8, heads: [4, 4], numLabels: 16 }

/** One request on a fresh connection (no keep-alive), so the primary hands each to the next worker. */
function send(url: string, method = 'GET', token?: string): Promise<{ status: number; worker: string; json: unknown }> {
  return new Promise((resolve, reject) => {
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` }
    const req = request(url, { agent: false, method, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, worker: String(res.headers['x-mhe-worker']), json: JSON.parse(body) as unknown }))
    })
    req.on('error', reject)
    req.end()
  })
}

interface ModelList {
  models: { name: string; serving?: string; unloaded: boolean }[]
}

/** What each of the two workers says about model "a" (GET /models), asking until both have answered. */
async function perWorker(url: string): Promise<Map<string, { serving?: string; unloaded: boolean } | undefined>> {
  const seen = new Map<string, { serving?: string; unloaded: boolean } | undefined>()
  for (let i = 0; i < 100 && seen.size < 2; i++) {
    const r = await send(`${url}/models`)
    // A busy machine can get a 503 from the event-loop pressure check: ask again.
    if (r.status === 200) seen.set(r.worker, (r.json as ModelList).models.find((m) => m.name === 'a'))
  }
  return seen
}

t.test('MHE_WORKERS=2: load, unload and index sent to one worker apply to both', async (t) => {
  const repo = await tempRepository(t)
  await addVersion(repo, 'a', 1, A)
  const srv = await startServer({ MHE_MODEL_REPOSITORY: repo, MHE_BACKEND: 'wasm', MHE_WORKERS: '2', MHE_ADMIN_KEYS: ADMIN, MHE_DRAIN_DELAY_MS: '0' })
  t.teardown(() => {
    if (srv.child.exitCode === null) srv.child.kill('SIGKILL')
  })
  await until('both workers ready', () => /all workers listening and ready/.test(srv.output()), srv.output)

  const start = await perWorker(srv.url)
  t.equal(start.size, 2, 'two workers answered')
  for (const [pid, a] of start) t.equal(a?.serving, '1', `worker ${pid} serves version 1`)

  // One load request: both workers load version 2 before it answers.
  await addVersion(repo, 'a', 2, A)
  const loaded = await send(`${srv.url}/v2/repository/models/a/load`, 'POST', ADMIN)
  t.equal(loaded.status, 200)
  t.same(loaded.json, { name: 'a', loaded: ['2'], unloaded: ['1'], serving: '2' })
  for (const [pid, a] of await perWorker(srv.url)) t.equal(a?.serving, '2', `worker ${pid} serves version 2`)

  const index = await send(`${srv.url}/v2/repository/index`, 'POST', ADMIN)
  t.same(index.json, [{ name: 'a', version: '2', state: 'READY', reason: '' }], 'the index agrees on both')

  // A broken version 3 fails on both: refused with the reason and the worker named; version 2 serves on everywhere.
  const dir3 = join(repo, 'a', '3')
  await addVersion(repo, 'a', 3, A)
  await writeFile(join(dir3, 'labels.txt'), 'only-one\n')
  const refused = await send(`${srv.url}/v2/repository/models/a/load`, 'POST', ADMIN)
  t.equal(refused.status, 422)
  t.match((refused.json as { error: string }).error, /^worker \d+ \(of 2\): model "a" failed to load \(version 3: .*labels\.txt.*\); version 2 still serves/)
  for (const [pid, a] of await perWorker(srv.url)) t.equal(a?.serving, '2', `worker ${pid} still serves version 2`)

  // One unload request: neither worker serves model "a" afterwards.
  const unloaded = await send(`${srv.url}/v2/repository/models/a/unload`, 'POST', ADMIN)
  t.equal(unloaded.status, 200)
  t.same(unloaded.json, { name: 'a', loaded: [], unloaded: ['2'] })
  for (const [pid, a] of await perWorker(srv.url)) t.same([a?.serving, a?.unloaded], [undefined, true], `worker ${pid} unloaded it`)
  const again = await send(`${srv.url}/v2/repository/models/a/unload`, 'POST', ADMIN)
  t.equal(again.status, 404, 'unloading what no worker serves: 404')
  t.match((again.json as { error: string }).error, /^worker \d+ \(of 2\): model "a" is not loaded/)

  srv.child.kill('SIGTERM')
  t.equal((await srv.exit).code, 0)
})
