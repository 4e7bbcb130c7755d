// The tallies print what prom-client's own Counter and Histogram print for the same observations (the same samples,
// label order aside), in the same registry beside prom-client's own metrics, and reset with it.
import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { TallyCounter, TallyHistogram } from '../../src/serving/tally.js'

/** The exposition's samples as "name{sorted labels} value" lines, sorted: label order does not matter to Prometheus. */
function samples(text: string, prefix: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => {
      const m = /^([^{ ]+)(?:\{(.*)\})? (.*)$/.exec(l)!
      const labels = (m[2] ?? '').split(/,(?=\w+=")/).filter(Boolean).sort().join(',')
      return `${m[1]!.replace(/^ref_|^tally_/, '')}{${labels}} ${m[3]}`
    })
    .sort()
}

t.test('the same samples as prom-client for the same observations', async (t) => {
  const registry = new Registry()
  const bounds = [0.001, 0.01, 0.1, 1]
  const refCount = new Counter({ name: 'ref_requests_total', help: 'h', labelNames: ['route', 'status'], registers: [registry] })
  const refHist = new Histogram({ name: 'ref_seconds', help: 'h', labelNames: ['route'], buckets: bounds, registers: [registry] })
  const count = new TallyCounter(registry, 'tally_requests_total', 'h', ['route', 'status'])
  const hist = new TallyHistogram(registry, 'tally_seconds', 'h', ['route'], bounds)
  const seen: [string, string, number][] = [
    ['/predict', '200', 0.0004],
    ['/predict', '200', 0.001], // on a bound: counted in it (le)
    ['/predict', '400', 0.05],
    ['/model', '200', 3],
    ['/predict', '200', 0.5],
  ]
  for (const [route, status, s] of seen) {
    refCount.labels(route, status).inc()
    count.inc(route, status)
    refHist.labels(route).observe(s)
    hist.observe(s, route)
  }
  const text = await registry.metrics()
  t.strictSame(samples(text, 'tally_requests_total'), samples(text, 'ref_requests_total'), 'counter samples')
  t.strictSame(samples(text, 'tally_seconds'), samples(text, 'ref_seconds'), 'histogram samples: buckets, +Inf, sum, count')
  t.match(text, /# TYPE tally_seconds histogram/)
  t.match(text, /# HELP tally_requests_total h\n# TYPE tally_requests_total counter/)
  registry.resetMetrics()
  t.notMatch(await registry.metrics(), /^tally_/m, 'reset with the registry')
})

t.test('a held series skips the lookup and adds to the same samples', async (t) => {
  const registry = new Registry()
  const hist = new TallyHistogram(registry, 'batch_size', 'h', ['model', 'version'], [1, 2, 4])
  const s = hist.at('a', '1')
  hist.add(s, 3)
  hist.observe(1, 'a', '1')
  const text = await registry.metrics()
  t.match(text, /batch_size_bucket\{model="a",version="1",le="1"\} 1/)
  t.match(text, /batch_size_bucket\{model="a",version="1",le="4"\} 2/)
  t.match(text, /batch_size_count\{model="a",version="1"\} 2/)
  t.throws(() => hist.observe(1, 'a'), /batch_size takes labels model, version, got 1 values/)
})
