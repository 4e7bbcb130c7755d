// The CPU cost of request logging alone, in µs per request, without sockets: Fastify's inject runs the whole request
// lifecycle of a bare app (the ceiling's route) with no logger, with Fastify's two info lines per request (what the
// service shipped before), and with the service's one access line (src/http/plugins/access-log.ts) at info and at
// the default (quiet: debug for 2xx). Lines go to a file, as to a log collector. Variants interleaved, best of N
// passes: steadier than req/s on a shared machine. Not part of `npm run bench`; run: npx tsx bench/log-cost.ts
import Fastify, { type FastifyInstance } from 'fastify'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { AccessLog, lazyChildLogger } from '../src/http/access-log.js'
import { jsonBody } from './lib/bundles.js'

const N = Number(process.env.LOG_COST_N ?? 5000)
const PASSES = Number(process.env.LOG_COST_PASSES ?? 7)
const dir = mkdtempSync(join(tmpdir(), 'log-cost-'))
const body = jsonBody(1, 768)

const VARIANTS = {
  'no logger (Fastify defaults)': { logger: false, controller: false, lazy: false, slowMs: 1000 },
  "pino, Fastify's two lines per request": { logger: true, controller: false, lazy: false, slowMs: 1000 },
  'one line, every request at info': { logger: true, controller: true, lazy: true, slowMs: 0 },
  'one line, errors and slow at info (eager child)': { logger: true, controller: true, lazy: false, slowMs: 1000 },
  'one line, errors and slow at info (shipped)': { logger: true, controller: true, lazy: true, slowMs: 1000 },
}
type Variant = (typeof VARIANTS)[keyof typeof VARIANTS]

async function make(name: string, v: Variant): Promise<FastifyInstance> {
  const stream = pino.destination({ dest: join(dir, `${name.replace(/\W+/g, '-')}.log`), sync: true })
  const app = Fastify({
    loggerInstance: v.logger ? pino({ level: 'info', redact: ['req.headers.authorization'] }, stream) : undefined,
    ...(v.controller ? { logController: new AccessLog(v.slowMs) } : {}),
    ...(v.lazy ? { childLoggerFactory: lazyChildLogger } : {}),
    genReqId: () => crypto.randomUUID(),
  }) as unknown as FastifyInstance
  app.post('/predict', async (request) => {
    if (!Array.isArray((request.body as { instances?: unknown }).instances)) throw new Error('expected instances')
    return { model: 'x', version: '1', predictions: [{ label_id: 1, score: 0.5 }] }
  })
  await app.ready()
  return app
}

const names = Object.keys(VARIANTS) as (keyof typeof VARIANTS)[]
const apps = await Promise.all(names.map((n) => make(n, VARIANTS[n])))
const best = new Map<string, number>(names.map((k) => [k, Infinity]))
for (let p = 0; p < PASSES; p++) {
  for (const [i, app] of apps.entries()) {
    const t0 = process.cpuUsage()
    for (let r = 0; r < N; r++) await app.inject({ method: 'POST', url: '/predict', payload: body, headers: { 'content-type': 'application/json' } })
    const u = process.cpuUsage(t0)
    best.set(names[i]!, Math.min(best.get(names[i]!)!, (u.user + u.system) / N))
  }
}
const base = best.get(names[0]!)!
for (const k of names) console.log(`${k.padEnd(50)} ${best.get(k)!.toFixed(1)} µs CPU per request (+${(best.get(k)! - base).toFixed(1)} µs)`)
for (const app of apps) await app.close()
rmSync(dir, { recursive: true, force: true })
