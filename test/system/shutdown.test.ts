// Graceful shutdown of the real process under load: readiness turns false, every request sent on an open
// connection gets an HTTP answer, the process exits 0; a second signal exits at once.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomFeatures } from '../helpers/bundles.js'
import { testBundle } from '../helpers/server.js'
import { startServer } from '../helpers/process.js'

const d = 32
const bundle = await testBundle(t, { featureDim: d, heads: [20, 20], numLabels: 400, seed: 8 })
const payload = JSON.stringify({ instances: Array.from({ length: 4 }, (_, i) => Array.from(randomFeatures(1, d, i))) })

const code = (err: unknown): string => {
  const e = err as { cause?: { code?: string }; code?: string; name?: string }
  return e.cause?.code ?? e.code ?? e.name ?? 'unknown'
}

t.test('SIGTERM under load: nothing sent on an open connection is lost, exit 0', async (t) => {
  const server = await startServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', MHE_DRAIN_DELAY_MS: '300', MHE_MAX_DELAY_MS: '5' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const counts = { answered: 0, refused: 0, lost: 0, notReady: 0 }
  const statuses = new Map<number, number>()
  const lostCodes: string[] = []
  let stop = false
  const client = async () => {
    while (!stop) {
      try {
        const res = await fetch(`${server.url}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
          signal: AbortSignal.timeout(20_000),
        })
        await res.arrayBuffer()
        counts.answered++
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      } catch (err) {
        // Refused = the listener is closed: the request was never sent on an open connection.
        if (code(err) === 'ECONNREFUSED') {
          counts.refused++
          return
        }
        counts.lost++
        lostCodes.push(code(err))
        return
      }
    }
  }
  const clients = Array.from({ length: 24 }, () => client())
  await sleep(1500)
  const answeredBeforeSignal = counts.answered
  server.child.kill('SIGTERM')
  await sleep(100)
  const ready = await fetch(`${server.url}/health/ready`).catch(() => null)
  if (ready) {
    if (ready.status === 503) counts.notReady++
    await ready.arrayBuffer()
  }
  const exit = await server.exit
  stop = true
  await Promise.all(clients)
  t.comment(`answered ${counts.answered} (${answeredBeforeSignal} before SIGTERM), statuses ${JSON.stringify(Object.fromEntries(statuses))}, refused after close ${counts.refused}, lost ${counts.lost} ${lostCodes.join(',')}`)
  t.ok(answeredBeforeSignal > 24, 'the load was real')
  t.ok(counts.answered > answeredBeforeSignal, 'requests were still answered while draining')
  t.equal(counts.notReady, 1, 'readiness was 503 while draining')
  t.equal(counts.lost, 0, 'no request on an open connection ended without an HTTP answer')
  t.ok([...statuses.keys()].every((s) => s === 200 || s === 503), 'only 200s (and 503 shutting down)')
  t.equal(exit.code, 0, 'exit 0')
  t.match(server.output(), /"msg":"stopped"/)
})

t.test('a second signal exits at once', async (t) => {
  const server = await startServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', MHE_DRAIN_DELAY_MS: '10000' })
  t.teardown(() => server.child.kill('SIGKILL'))
  server.child.kill('SIGTERM')
  await sleep(200)
  server.child.kill('SIGTERM')
  const exit = await Promise.race([server.exit, sleep(5000).then(() => null)])
  t.ok(exit, 'exited well before the 10 s drain delay')
  t.equal(exit?.code, 1)
  t.match(server.output(), /second signal/)
})
