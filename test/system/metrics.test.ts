// GET /metrics: every series is there and moves with traffic.
import t from 'tap'
import { testApp, testBundle } from '../helpers/server.js'

const d = 4
const bundle = await testBundle(t, { featureDim: d, heads: [3, 3], numLabels: 9, seed: 2 })

/** Sum of a series' samples whose labels contain `match` (e.g. 'status="200"'). */
function sample(text: string, name: string, match = ''): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (line.includes(match)) total += Number(line.slice(line.lastIndexOf(' ') + 1))
    }
  }
  return total
}

t.test('each series appears and moves', async (t) => {
  const app = await testApp(t, bundle, { MHE_MAX_INSTANCES: '8' })
  const scrape = async () => {
    const res = await app.inject('/metrics')
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/plain/)
    return res.body
  }
  const before = await scrape()
  for (const name of [
    'mhe_http_requests_total', 'mhe_http_request_duration_seconds', 'mhe_queue_wait_seconds', 'mhe_batch_compute_seconds',
    'mhe_batch_size', 'mhe_queue_depth', 'mhe_rejections_total', 'mhe_tfjs_tensors', 'mhe_model_info', 'mhe_process_resident_memory_bytes',
    'mhe_model_requests_total', 'mhe_model_request_duration_seconds', 'mhe_model_load_seconds', 'mhe_model_load_failures_total',
    'mhe_model_serving_version', 'mhe_model_versions', 'mhe_model_queue_depth',
  ]) t.match(before, `# TYPE ${name} `, `${name} declared`)
  t.match(before, /mhe_model_info\{name="test",version="1",backend="wasm",heads="3x3",num_labels="9",model="test",model_version="1"\} 1/)
  t.match(before, /mhe_model_serving_version\{model="test"\} 1\n/)
  t.match(before, /mhe_model_versions\{model="test",state="ready"\} 1\n/)
  t.ok(sample(before, 'mhe_model_load_seconds', 'model="test",version="1"') > 0, 'load time of the version')
  t.ok(sample(before, 'mhe_tfjs_tensors') > 0, 'tensor gauge reads the engine')

  const row = Array.from({ length: d }, () => 0.25)
  for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/predict', payload: { instances: [row, row, row] } })
  await app.inject({ method: 'POST', url: '/predict', payload: { instances: [row.slice(1)] } })
  await app.inject({ method: 'POST', url: '/predict', payload: { instances: Array.from({ length: 9 }, () => row) } })
  const after = await scrape()

  const ok = (text: string) => sample(text, 'mhe_http_requests_total', 'route="/predict",method="POST",status="200"')
  t.equal(ok(after) - ok(before), 5, 'requests by route and status')
  t.equal(sample(after, 'mhe_http_requests_total', 'status="400"'), 2, 'the two bad requests')
  t.equal(sample(after, 'mhe_http_request_duration_seconds_count', 'route="/predict"'), 7, 'latency histogram')
  t.equal(sample(after, 'mhe_batch_size_sum') - sample(before, 'mhe_batch_size_sum'), 15, '15 instances went through batches')
  t.equal(sample(after, 'mhe_batch_size_sum', 'model="test",version="1"'), 15, 'batch sizes by model and version')
  t.equal(sample(after, 'mhe_model_requests_total', 'model="test",version="1",status="200"'), 5, 'requests by model, version and status')
  t.equal(sample(after, 'mhe_model_requests_total', 'status="400"'), 2, 'refusals are counted on the version they were sent to')
  t.equal(sample(after, 'mhe_model_request_duration_seconds_count', 'model="test"'), 7, 'latency by model and version')
  t.ok(sample(after, 'mhe_queue_wait_seconds_count') >= 15, 'queue wait per instance')
  t.ok(sample(after, 'mhe_batch_compute_seconds_count') >= 5, 'compute per batch')
  t.equal(sample(after, 'mhe_rejections_total', 'reason="MHE_BAD_INSTANCE"'), 1, 'rejections by reason')
  t.equal(sample(after, 'mhe_rejections_total', 'reason="MHE_TOO_MANY_INSTANCES"'), 1)
  t.equal(sample(after, 'mhe_queue_depth'), 0, 'nothing waiting once answered')
  t.equal(sample(after, 'mhe_tfjs_tensors'), sample(before, 'mhe_tfjs_tensors'), 'tensor count constant')
})

t.test('/metrics can be protected with the API keys', async (t) => {
  const open = await testApp(t, bundle, { MHE_API_KEYS: 'k1' })
  t.equal((await open.inject('/metrics')).statusCode, 200, 'open by default')
  const closed = await testApp(t, bundle, { MHE_API_KEYS: 'k1', MHE_METRICS_AUTH: 'true' })
  const denied = await closed.inject('/metrics')
  t.equal(denied.statusCode, 401)
  t.match(denied.headers['www-authenticate'], /Bearer/)
  t.equal((await closed.inject({ url: '/metrics', headers: { authorization: 'Bearer k1' } })).statusCode, 200)
  t.notMatch((await closed.inject({ url: '/metrics', headers: { authorization: 'Bearer k1' } })).body, 'k1', 'no token in metrics')
})
