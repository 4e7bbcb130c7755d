// Overload: hundreds of concurrent clients against a tiny queue get 200s and immediate 503s with Retry-After,
// never a reset or a hang, and the server is ready afterwards. Also: a request's deadline inside the server.
import t from 'tap'
import { randomFeatures } from '../helpers/bundles.js'
import { testApp, testBundle } from '../helpers/server.js'

const d = 64
const bundle = await testBundle(t, { featureDim: d, heads: [40, 40], numLabels: 1500, seed: 4 })
const body = (n: number) => JSON.stringify({ instances: Array.from({ length: n }, (_, i) => Array.from(randomFeatures(1, d, i))) })

t.test('a full queue answers 503 + Retry-After at once; nothing else goes wrong', async (t) => {
  // The queue alone decides (testApp leaves the event-loop guard off): every 503 must be MHE_QUEUE_FULL.
  const app = await testApp(t, bundle, { MHE_MAX_QUEUE: '4', MHE_MAX_BATCH: '4', MHE_MAX_DELAY_MS: '20', MHE_ADMISSION_WAIT_MS: '0' })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const statuses = new Map<number, number>()
  let withoutRetryAfter = 0
  let wrongCode = 0
  let failures = 0
  const reasons = new Map<string, number>()
  const one = async (i: number) => {
    try {
      const res = await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(1 + (i % 3)),
        signal: AbortSignal.timeout(30_000),
      })
      const json = (await res.json()) as { code?: string; predictions?: unknown[] }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      if (res.status === 503) {
        if (!res.headers.get('retry-after')) withoutRetryAfter++
        if (json.code !== 'MHE_QUEUE_FULL') wrongCode++
      }
    } catch (err) {
      failures++
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      const why = `${(err as Error).name}: ${cause?.code ?? cause?.message ?? (err as Error).message}`
      reasons.set(why, (reasons.get(why) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: 400 }, (_, i) => one(i)))
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.equal(failures, 0, `no connection reset, no timeout (${JSON.stringify(Object.fromEntries(reasons))})`)
  t.same([...statuses.keys()].sort(), [200, 503], 'only 200 and 503 come back, and both do')
  t.equal(withoutRetryAfter, 0, 'every 503 has Retry-After')
  t.equal(wrongCode, 0, 'every 503 says MHE_QUEUE_FULL')
  const ready = await fetch(`${url}/health/ready`)
  t.equal(ready.status, 200, 'ready afterwards')
  const after = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(2) })
  t.equal(after.status, 200, 'and predicting')
  const metrics = await (await fetch(`${url}/metrics`)).text()
  t.match(metrics, /mhe_rejections_total\{reason="MHE_QUEUE_FULL"\} [1-9]/, 'rejections counted by reason')
})

t.test('a request past MHE_REQUEST_TIMEOUT_MS gets 503 MHE_TIMEOUT, not a hang', async (t) => {
  // The first instance of a batch waits MHE_MAX_DELAY_MS for company: longer than the deadline.
  const app = await testApp(t, bundle, { MHE_REQUEST_TIMEOUT_MS: '30', MHE_MAX_DELAY_MS: '2000', MHE_MAX_BATCH: '64' })
  const res = await app.inject({ method: 'POST', url: '/predict', payload: body(1), headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'MHE_TIMEOUT')
  t.ok(res.headers['retry-after'])
  t.equal(app.mhe.batcher.depth, 0, 'the expired instance left the queue')
})
