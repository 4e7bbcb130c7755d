// Goodput under overload: the demo bundle (d=4096), 4 JSON instances per request (~300 KB), MHE_MAX_QUEUE=64
// MHE_MAX_BATCH=32, otherwise as shipped; 8, 64, 256 and 512 clients sending back to back (autocannon does not wait
// for Retry-After: the harshest client). Answers/s (200) against offered load, and what the rest got: every refusal
// must be a 503 with Retry-After, and no socket errors. The bar: 512 clients get >= 0.7x the answers/s of 8.

import autocannon from 'autocannon'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from './lib/server.js'
import { jsonBody } from './lib/bundles.js'
import { DURATION_S, isMain, RESULTS, round, scenario, type ScenarioResult } from './lib/result.js'
import { lineChart } from './lib/svg.js'

export const CLIENTS = [8, 64, 256, 512]
const INSTANCES = 4
const DIM = 4096

interface Run {
  clients: number
  answersPerSec: number
  refusalsPerSec: number
  /** 503s without Retry-After, other statuses, socket errors and timeouts. */
  bad503: number
  otherStatus: number
  errors: number
  p50Ms: number
  p99Ms: number
  serverCores: number
}

async function once(url: string, body: string, clients: number, durationS: number, cpuMs: () => number): Promise<Run> {
  let ok = 0
  let refused = 0
  let bad503 = 0
  let other = 0
  const run = (duration: number, count: boolean) =>
    new Promise<autocannon.Result>((resolve, reject) => {
      autocannon(
        {
          url,
          connections: clients,
          duration,
          timeout: 30,
          requests: [
            {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body,
              onResponse: (status, _body, _ctx, headers) => {
                if (!count) return
                if (status === 200) ok++
                else if (status === 503) {
                  refused++
                  if (!headers?.['retry-after'] && !(headers as Record<string, unknown> | undefined)?.['Retry-After']) bad503++
                } else other++
              },
            },
          ],
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      )
    })
  await run(1, false) // warm-up: connections made, JIT settled
  const c0 = cpuMs()
  const t0 = performance.now()
  const r = await run(durationS, true)
  const wallS = (performance.now() - t0) / 1000
  const p = `  goodput c=${clients}: ${(ok / r.duration).toFixed(0)} answers/s, ${(refused / r.duration).toFixed(0)} 503/s, errors ${r.errors + r.timeouts}, other ${other}\n`
  process.stderr.write(p)
  return {
    clients,
    answersPerSec: ok / r.duration,
    refusalsPerSec: refused / r.duration,
    bad503,
    otherStatus: other,
    errors: r.errors + r.timeouts,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    serverCores: (cpuMs() - c0) / 1000 / wallS,
  }
}

export async function run(): Promise<ScenarioResult> {
  return scenario('goodput', 'Goodput under overload: demo bundle (d=4096), 4 JSON instances per request, MHE_MAX_QUEUE=64 MHE_MAX_BATCH=32', async (r) => {
    r.settings = { ...r.settings, bundle: 'models/demo (d=4096)', instancesPerRequest: INSTANCES, maxQueue: 64, maxBatch: 32, passes: '2 (up, then down)' }
    const svc = await startServer({ env: { MHE_BACKEND: 'wasm', MHE_MAX_QUEUE: '64', MHE_MAX_BATCH: '32', LOG_LEVEL: 'info' } })
    try {
      const body = jsonBody(INSTANCES, DIM)
      r.settings.bodyBytes = Buffer.byteLength(body)
      const url = `${svc.url}/predict`
      const runs = new Map<number, Run[]>(CLIENTS.map((c) => [c, []]))
      for (const order of [CLIENTS, [...CLIENTS].reverse()]) {
        for (const c of order) runs.get(c)!.push(await once(url, body, c, DURATION_S, svc.cpuMs))
      }
      for (const c of CLIENTS) {
        const rs = runs.get(c)!
        const mean = (f: (x: Run) => number) => rs.reduce((a, x) => a + f(x), 0) / rs.length
        const sum = (f: (x: Run) => number) => rs.reduce((a, x) => a + f(x), 0)
        r.rows.push({
          clients: c,
          answersPerSec: round(mean((x) => x.answersPerSec), 1),
          refusalsPerSec: round(mean((x) => x.refusalsPerSec), 0),
          answerP50Ms: round(mean((x) => x.p50Ms)),
          allP99Ms: round(mean((x) => x.p99Ms)),
          serverCores: round(mean((x) => x.serverCores)),
          refusalsWithoutRetryAfter: sum((x) => x.bad503),
          otherStatuses: sum((x) => x.otherStatus),
          socketErrors: sum((x) => x.errors),
        })
      }
      const at = (c: number) => r.rows.find((x) => x.clients === c)!
      const ratio = round((at(512).answersPerSec as number) / (at(8).answersPerSec as number), 3)
      const bad = r.rows.reduce((a, x) => a + (x.refusalsWithoutRetryAfter as number) + (x.otherStatuses as number) + (x.socketErrors as number), 0)
      r.checks.push(
        { name: 'answers/s at 512 clients vs 8', target: '>= 0.7x', value: `${ratio}x (${at(512).answersPerSec} vs ${at(8).answersPerSec})`, pass: ratio >= 0.7 },
        { name: 'every refusal a 503 with Retry-After, no socket error', target: '0 others', value: String(bad), pass: bad === 0 },
      )
      r.notes.push(`log lines written by the server during the scenario: ${round(svc.logBytes() / 1e6, 1)} MB`)
    } finally {
      await svc.stop()
    }
  })
}

/** The chart: answers/s and refusals/s against clients. */
export function goodputChart(r: ScenarioResult): void {
  const rows = r.rows as { clients: number; answersPerSec: number; refusalsPerSec: number; allP99Ms: number }[]
  const xs = rows.map((x) => x.clients)
  writeFileSync(
    join(RESULTS, 'goodput.svg'),
    lineChart(
      [
        { title: 'answers (200) per second', yLabel: 'answers/s', series: [{ name: 'goodput', points: rows.map((x) => [x.clients, x.answersPerSec]), color: '#1f77b4' }] },
        { title: 'refusals (503 + Retry-After) per second', yLabel: '503/s', series: [{ name: 'refused before the body', points: rows.map((x) => [x.clients, x.refusalsPerSec]), color: '#d62728' }] },
      ],
      xs,
      'clients (back to back)',
      'Goodput against offered load (demo d=4096, 4 JSON instances per request, queue 64, batch 32)',
    ),
  )
}

if (isMain(import.meta.url)) await run()
