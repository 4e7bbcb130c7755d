// The probes while the event-loop guard refuses work: /predict gets 503 MHE_OVERLOADED, /health/live and
// /health/ready answer as usual (readiness was answered 500: the guard's error body failed the route's 503 schema).
import t from 'tap'
import { testApp, testBundle } from '../helpers/server.js'

const d = 4
const bundle = await testBundle(t, { featureDim: d, heads: [3, 3], numLabels: 9, seed: 3 })

/** Keeps the event loop busy for `ms`: the guard's next sample sees the lag. */
const block = (ms: number) => {
  const end = Date.now() + ms
  while (Date.now() < end);
}

t.test('under the event-loop guard, liveness and readiness answer 200 in their documented shape', async (t) => {
  const app = await testApp(t, bundle, { MHE_MAX_EVENT_LOOP_DELAY_MS: '50' })
  const predict = () => app.inject({ method: 'POST', url: '/predict', payload: { instances: [[1, 2, 3, 4]] } })
  // Block until a /predict is refused by the guard, then ask the probes in the same sample window, and check that
  // the guard was still on after them.
  for (let attempt = 0; attempt < 20; attempt++) {
    block(300)
    await new Promise((r) => setTimeout(r, 20))
    const before = await predict()
    if (before.statusCode !== 503) continue
    t.equal(before.json().code, 'MHE_OVERLOADED', 'the guard refuses /predict')
    t.ok(before.headers['retry-after'], 'with Retry-After')
    const live = await app.inject('/health/live')
    const ready = await app.inject('/health/ready')
    const after = await predict()
    if (after.statusCode !== 503) continue // the sample window ended in between: try again
    t.equal(live.statusCode, 200, 'liveness 200')
    t.strictSame(live.json(), { status: 'ok' })
    t.equal(ready.statusCode, 200, 'readiness 200, never 500')
    t.strictSame(ready.json(), { status: 'ready' })
    return
  }
  t.fail('the guard never refused /predict')
})
