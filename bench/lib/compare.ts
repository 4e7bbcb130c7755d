// Runs load against several targets interleaved (A B B A ...), so slow drift of a shared machine hits all alike,
// and averages each target's runs.

import { load, type LoadResult, type LoadSpec } from './load.js'

export interface Target {
  name: string
  spec: Omit<LoadSpec, 'connections' | 'durationS'>
}

export interface Averaged extends LoadResult {
  name: string
  runs: number
}

function average(name: string, rs: LoadResult[]): Averaged {
  const mean = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  const sum = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0)
  return {
    name,
    runs: rs.length,
    connections: rs[0]!.connections,
    durationS: sum((r) => r.durationS),
    reqPerSec: mean((r) => r.reqPerSec),
    instancesPerSec: mean((r) => r.instancesPerSec),
    p50Ms: mean((r) => r.p50Ms),
    p90Ms: mean((r) => r.p90Ms),
    p99Ms: mean((r) => r.p99Ms),
    maxMs: Math.max(...rs.map((r) => r.maxMs)),
    requests: sum((r) => r.requests),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    mbPerSec: mean((r) => r.mbPerSec),
    cpuUsPerReq: mean((r) => r.cpuUsPerReq),
    serverCores: mean((r) => r.serverCores),
    loadgenCores: mean((r) => r.loadgenCores),
  }
}

/** `rounds` passes over the targets, every other pass reversed; returns one averaged result per target. */
export async function interleave(targets: Target[], connections: number, durationS: number, rounds = 2): Promise<Averaged[]> {
  const runs = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]))
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse()
    for (const t of order) {
      const res = await load({ ...t.spec, connections, durationS })
      runs.get(t.name)!.push(res)
      process.stderr.write(
        `  ${t.name} c=${connections}: ${res.reqPerSec.toFixed(0)} req/s, p50 ${res.p50Ms} ms, p99 ${res.p99Ms} ms, errors ${res.errors + res.non2xx}, ${res.cpuUsPerReq.toFixed(0)} µs CPU/req, ${res.serverCores.toFixed(2)} cores (load generator ${res.loadgenCores.toFixed(2)})\n`,
      )
    }
  }
  return targets.map((t) => average(t.name, runs.get(t.name)!))
}

/** A few seconds of load first: JIT, wasm heap and connection pools settle before anything is measured. */
export async function warm(spec: Target['spec'], seconds = 3): Promise<void> {
  await load({ ...spec, connections: 16, durationS: seconds }, 0)
}
