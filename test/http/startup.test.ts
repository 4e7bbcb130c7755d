// Listen first, then load: an app built without starting its service answers the probes and refuses predictions
// with 503 MHE_NOT_READY + Retry-After until app.mhe.start() has loaded and warmed up the model. In-process: the
// "starting" window is held open by not calling start() yet, so no timing is involved.
import t from 'tap'
import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { buildApp } from '../../src/http/app.js'
import { loadConfig } from '../../src/config.js'
import { BundleError } from '../../src/errors.js'
import { BatcherClosedError } from '../../src/serving/batcher.js'
import { tempDir, testBundle } from '../helpers/server.js'

const d = 4
const bundle = await testBundle(t, { featureDim: d, heads: [3, 3], numLabels: 9, seed: 3 })
// The event-loop guard is off: on a busy test machine it could answer 503 MHE_OVERLOADED, which is not under test here.
const config = (dir: string) => loadConfig({ MHE_MODEL: dir, MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent', MHE_MAX_EVENT_LOOP_DELAY_MS: '0' })
const predict = { method: 'POST' as const, url: '/predict', payload: { instances: [[0.1, 0.2, 0.3, 0.4]] } }
const stateGauge = (metrics: string, state: string) => new RegExp(`mhe_service_state\\{state="${state}"\\} 1`).test(metrics)

t.test('starting: live, not ready, 503 MHE_NOT_READY on /predict and /model; then ready', async (t) => {
  const app = await buildApp(config(bundle.dir), { startService: false })
  t.teardown(() => app.close())
  t.equal(app.mhe.state, 'starting')

  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200, 'liveness answers at once')
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'starting' })
  t.equal(ready.headers['retry-after'], '1')
  for (const req of [predict, { method: 'GET' as const, url: '/model' }]) {
    const res = await app.inject(req)
    t.equal(res.statusCode, 503, `${req.url}: 503`)
    t.equal(res.json().code, 'MHE_NOT_READY')
    t.equal(res.headers['retry-after'], '1')
  }
  const bad = await app.inject({ ...predict, payload: { instances: 'abc' } })
  t.equal(bad.statusCode, 400, 'a malformed request is still the client\'s fault while starting')
  const metrics = (await app.inject('/metrics')).body
  t.ok(stateGauge(metrics, 'starting'), 'metrics say starting')
  t.notMatch(metrics, /mhe_model_info\{/, 'no model info before the model')

  await app.mhe.start()
  t.equal(app.mhe.state, 'ready')
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  t.equal((await app.inject(predict)).statusCode, 200)
  t.equal((await app.inject('/model')).json().featureDim, d)
  const after = (await app.inject('/metrics')).body
  t.ok(stateGauge(after, 'ready'), 'metrics say ready')
  t.match(after, /mhe_model_info\{name="test"/)
})

t.test('a bundle that cannot load: start() rejects with the BundleError, the service is failed', async (t) => {
  const dir = join(await tempDir(t), 'bundle')
  await cp(bundle.dir, dir, { recursive: true })
  await rm(join(dir, 'weights.bin'))
  const app = await buildApp(config(dir), { startService: false })
  t.teardown(() => app.close())
  const err = await app.mhe.start().catch((e: unknown) => e)
  t.ok(err instanceof BundleError, 'a BundleError naming the file')
  t.match((err as Error).message, /weights\.bin/)
  t.equal(app.mhe.state, 'failed')
  t.equal((await app.inject('/health/live')).statusCode, 503)
  t.equal((await app.inject('/health/ready')).json().status, 'failed')
  await t.rejects(buildApp(config(dir)), BundleError, 'buildApp with the default start rejects the same way')
})

t.test('closed while loading: close waits for the load, frees the model, and the service never turns ready', async (t) => {
  const app = await buildApp(config(bundle.dir), { startService: false })
  const started = app.mhe.start()
  await app.close()
  await started
  t.equal(app.mhe.state, 'closing', 'not ready after the load finished')
  await t.rejects(app.mhe.batcher.submit([{ features: new Float32Array(d), k: 1 }]), BatcherClosedError, 'its batcher was closed')
  await t.rejects(app.mhe.engine.predict(new Float32Array(d), 1, [1]), /disposed/, 'its engine was freed')
})
