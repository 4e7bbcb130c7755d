// Drives a server with autocannon (programmatic API) and boils its result down to the numbers we report.

import autocannon from 'autocannon'

export interface LoadSpec {
  /** Several URLs (independent servers): the connections are split between them, driven at once, results summed. */
  url: string | string[]
  connections: number
  durationS: number
  body: Buffer | string
  contentType: string
  /** Instances in one request, to report instances/s. */
  instances?: number
  /** CPU time of the server so far (ms), to report its CPU per request: steadier than req/s on a busy machine. */
  serverCpuMs?: () => number
}

export interface LoadResult {
  connections: number
  durationS: number
  reqPerSec: number
  instancesPerSec: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  requests: number
  errors: number
  timeouts: number
  non2xx: number
  mbPerSec: number
  /** Server CPU time per answered request (µs); NaN when not measured. */
  cpuUsPerReq: number
  /** Server CPU use during the run, in cores (1 = one core busy all the time). */
  serverCores: number
  /** CPU use of this process (autocannon, the load generator) during the run, in cores. */
  loadgenCores: number
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)))
  })
}

/** Runs on every URL at once, connections split evenly; percentiles are the request-weighted means of the parts. */
async function runAll(urls: string[], opts: Omit<autocannon.Options, 'url'>): Promise<autocannon.Result> {
  const parts = await Promise.all(urls.map((url) => run({ ...opts, url, connections: Math.max(1, Math.round((opts.connections ?? 1) / urls.length)) })))
  if (parts.length === 1) return parts[0]!
  const total = parts.reduce((a, p) => a + p.requests.total, 0)
  const w = (f: (p: autocannon.Result) => number) => parts.reduce((a, p) => a + f(p) * p.requests.total, 0) / Math.max(1, total)
  const first = parts[0]!
  return {
    ...first,
    duration: Math.max(...parts.map((p) => p.duration)),
    requests: { ...first.requests, total },
    latency: { ...first.latency, p50: w((p) => p.latency.p50), p90: w((p) => p.latency.p90), p99: w((p) => p.latency.p99), max: Math.max(...parts.map((p) => p.latency.max)) },
    errors: parts.reduce((a, p) => a + p.errors, 0),
    timeouts: parts.reduce((a, p) => a + p.timeouts, 0),
    non2xx: parts.reduce((a, p) => a + p.non2xx, 0),
    throughput: { ...first.throughput, average: parts.reduce((a, p) => a + p.throughput.average, 0) },
  }
}

/** One autocannon run; a short warm-up (discarded) first so JIT and connections settle. */
export async function load(spec: LoadSpec, warmUpS = 1): Promise<LoadResult> {
  const urls = Array.isArray(spec.url) ? spec.url : [spec.url]
  const base: Omit<autocannon.Options, 'url'> = {
    method: 'POST',
    connections: spec.connections,
    pipelining: 1,
    timeout: 30,
    headers: { 'content-type': spec.contentType },
    body: spec.body,
  }
  if (warmUpS > 0) await runAll(urls, { ...base, duration: warmUpS })
  const cpu0 = spec.serverCpuMs?.() ?? NaN
  const t0 = performance.now()
  const own0 = process.cpuUsage()
  const r = await runAll(urls, { ...base, duration: spec.durationS })
  const own = process.cpuUsage(own0)
  const cpuMs = (spec.serverCpuMs?.() ?? NaN) - cpu0
  const wallMs = performance.now() - t0
  const reqPerSec = r.requests.total / r.duration
  return {
    connections: spec.connections,
    durationS: r.duration,
    reqPerSec,
    instancesPerSec: reqPerSec * (spec.instances ?? 1),
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    requests: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    mbPerSec: r.throughput.average / 1e6,
    cpuUsPerReq: (cpuMs * 1000) / Math.max(1, r.requests.total),
    serverCores: cpuMs / wallMs,
    loadgenCores: (own.user + own.system) / 1000 / wallMs,
  }
}

/** One answer of a timed run: when it arrived (performance.now() of this process), its latency and status. */
export interface Answer {
  at: number
  ms: number
  status: number
}

/** One autocannon run (no warm-up) that keeps every answer's arrival time and latency, for windows within the run. */
export function timedLoad(spec: LoadSpec & { url: string }): Promise<{ answers: Answer[]; errors: number }> {
  const answers: Answer[] = []
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: spec.url, method: 'POST', connections: spec.connections, pipelining: 1, timeout: 30, duration: spec.durationS, headers: { 'content-type': spec.contentType }, body: spec.body },
      (err, res) => (err ? reject(err) : resolve({ answers, errors: res.errors })), // errors counts timeouts too
    )
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => answers.push({ at: performance.now(), ms, status }))
  })
}

/** The q-quantile (0..1) of `xs` by nearest rank (sorted here), NaN when empty. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const sorted = Float64Array.from(xs).sort()
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!
}
