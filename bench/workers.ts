// Using the machine: the engine on the event loop (MHE_ENGINE_THREAD=false), on its own worker thread (the default),
// and one process per core (MHE_WORKERS=0, node:cluster, each with its engine thread), JSON and binary at concurrency
// 64, with the single-process HTTP ceiling alongside; start-up time and RSS of each.

import { request } from 'node:http'
import { availableParallelism } from 'node:os'
import { startServer } from './lib/server.js'
import { benchBundle, binaryBody, jsonBody } from './lib/bundles.js'
import { interleave, warm, type Target } from './lib/compare.js'
import { DURATION_S, isMain, round, scenario, type ScenarioResult } from './lib/result.js'

/** Polls on fresh connections (the primary deals them out in turn) until `n` distinct x-mhe-worker pids answered. */
async function allWorkersUp(url: string, n: number): Promise<void> {
  const seen = new Set<string>()
  for (let i = 0; i < 3000 && seen.size < n; i++) {
    const pid = await new Promise<string | undefined>((resolve) => {
      const req = request(`${url}/health/ready`, { agent: false }, (res) => {
        res.resume()
        resolve(res.statusCode === 200 ? (res.headers['x-mhe-worker'] as string | undefined) : undefined)
      })
      req.on('error', () => resolve(undefined))
      req.end()
    })
    if (pid !== undefined) seen.add(pid)
    else await new Promise((res) => setTimeout(res, 20))
  }
  if (seen.size < n) throw new Error(`only ${seen.size} of ${n} workers answered`)
}

export async function run(): Promise<ScenarioResult> {
  return scenario('workers', `Threads and processes: engine on the event loop vs on a worker thread vs one process per core (${availableParallelism()}), concurrency 64`, async (r) => {
    const b = benchBundle(768, [100, 100, 100])
    r.settings = { ...r.settings, bundle: 'd=768, heads 100x100x100, C=10^6', connections: 64, cores: availableParallelism(), rounds: 2 }
    const env = { MHE_MODEL: b.dir, MHE_BACKEND: 'wasm' }
    const ceiling = await startServer({ argv: ['--import', 'tsx', 'bench/ceiling-server.ts'] })
    const loop = await startServer({ env: { ...env, MHE_WORKERS: '1', MHE_ENGINE_THREAD: 'false' } })
    const one = await startServer({ env: { ...env, MHE_WORKERS: '1' } })
    const many = await startServer({ env: { ...env, MHE_WORKERS: '0' } })
    // The cluster's cost: the same number of processes, independent (own ports, the load split between them), as
    // replicas behind a load balancer would be; node:cluster hands every connection through the primary.
    const cores = availableParallelism()
    const replicas = await Promise.all(Array.from({ length: cores }, () => startServer({ env: { ...env, MHE_WORKERS: '1' } })))
    const replicasCpuMs = () => replicas.reduce((a, s) => a + s.cpuMs(), 0)
    // /health/ready answers as soon as the first worker is up; wait until every worker has answered.
    await allWorkersUp(many.url, availableParallelism())
    try {
      for (const [label, body, ct] of [
        ['JSON', jsonBody(1, 768), 'application/json'],
        ['binary', binaryBody(1, 768), 'application/octet-stream'],
      ] as const) {
        const targets: Target[] = [
          { name: `ceiling (1 process), ${label}`, spec: { url: `${ceiling.url}/predict`, body, contentType: ct, serverCpuMs: ceiling.cpuMs } },
          { name: `engine on the event loop, ${label}`, spec: { url: `${loop.url}/predict`, body, contentType: ct, serverCpuMs: loop.cpuMs } },
          { name: `engine thread (default), ${label}`, spec: { url: `${one.url}/predict`, body, contentType: ct, serverCpuMs: one.cpuMs } },
          { name: `one per core, ${label}`, spec: { url: `${many.url}/predict`, body, contentType: ct, serverCpuMs: many.cpuMs } },
          { name: `${cores} independent processes, ${label}`, spec: { url: replicas.map((s) => `${s.url}/predict`), body, contentType: ct, serverCpuMs: replicasCpuMs } },
        ]
        for (const t of targets) await warm(t.spec, 2)
        const res = await interleave(targets, 64, DURATION_S)
        const [c, s0, s1, sN, sI] = res
        for (const x of res) {
          r.rows.push({
            variant: x.name,
            reqPerSec: round(x.reqPerSec, 0),
            vsCeiling: round(x.reqPerSec / c!.reqPerSec, 3),
            p50Ms: round(x.p50Ms),
            p99Ms: round(x.p99Ms),
            cpuUsPerReq: round(x.cpuUsPerReq, 0),
            serverCores: round(x.serverCores, 2),
            errors: x.errors + x.timeouts + x.non2xx,
          })
        }
        r.notes.push(
          `${label}: the engine thread gives ${round(s1!.reqPerSec / s0!.reqPerSec, 2)}x the req/s of the engine on the event loop ` +
            `(CPU per request ${round(s1!.cpuUsPerReq, 0)} vs ${round(s0!.cpuUsPerReq, 0)} µs); one process per core gives ` +
            `${round(sN!.reqPerSec / s1!.reqPerSec, 2)}x the req/s of one process with its engine thread; ${cores} independent processes ` +
            `${round(sI!.reqPerSec / s1!.reqPerSec, 2)}x (so the cluster gets ${round(sN!.reqPerSec / sI!.reqPerSec, 2)}x of independent processes; ` +
            `CPU per request ${round(sN!.cpuUsPerReq, 0)} vs ${round(sI!.cpuUsPerReq, 0)} µs)`,
        )
      }
      r.settings = {
        ...r.settings,
        readyMsLoop: round(loop.readyMs, 0),
        readyMsOne: round(one.readyMs, 0),
        readyMsPerCore: round(many.readyMs, 0),
        rssMbLoop: round(loop.rssMb(), 0),
        rssMbOne: round(one.rssMb(), 0),
        rssMbPerCore: round(many.rssMb(), 0),
        rssMbIndependent: round(replicas.reduce((a, s) => a + s.rssMb(), 0), 0),
      }
    } finally {
      await ceiling.stop()
      await loop.stop()
      await one.stop()
      await many.stop()
      for (const s of replicas) await s.stop()
    }
  })
}

if (isMain(import.meta.url)) await run()
