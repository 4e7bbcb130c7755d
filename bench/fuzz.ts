// `npm run bench:fuzz [-- --runs N --seed S --concurrency C --inject]`: the fuzz properties of test/system/fuzz.test.ts
// at volume (100,000 cases by default) against the real app listening on a socket (port 0, keep-alive HTTP/1.1),
// or through app.inject with --inject. Every failure is kept (not only the first), grouped by reason, and printed
// with its smallest reproducer; the summary goes to bench/results/fuzz.json. Exit code 1 if any case failed.

import { mkdir, rm, mkdtemp, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { buildApp } from '../src/http/app.js'
import { loadConfig } from '../src/config.js'
import { selectBackend } from '../src/engine/backend.js'
import { makeHeadsBundle } from '../test/helpers/bundles.js'
import { numTensors } from '../test/helpers/server.js'
import { checkResponse, describe, fuzzTarget, requestArb, sendInject, withTimeout, HangError, FUZZ_BUNDLE, FUZZ_SETTINGS, type FuzzRequest, type FuzzResponse } from '../test/helpers/fuzz.js'
import { machine } from './lib/machine.js'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
    inject: { type: 'boolean', default: false },
  },
})
const runs = Number(args.runs)
const seed = args.seed !== undefined ? Number(args.seed) : Date.now() % 2 ** 31
const concurrency = Math.max(1, Number(args.concurrency))
const HANG_MS = 30_000

await selectBackend('wasm', { info: () => {}, warn: () => {} })
const dir = await mkdtemp(join(tmpdir(), 'mhe-fuzz-'))
const bundle = await makeHeadsBundle(join(dir, 'bundle'), FUZZ_BUNDLE)
const config = loadConfig({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent', ...FUZZ_SETTINGS })
const target = fuzzTarget(config, bundle)
const app = await buildApp(config)
let send: (req: FuzzRequest) => Promise<FuzzResponse>
let agent: Agent | undefined
let transport: string
if (args.inject) {
  transport = 'app.inject (in-process)'
  send = (req) => sendInject(app, req, HANG_MS)
} else {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const base = new URL(address)
  agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  transport = `HTTP/1.1 keep-alive to ${address} (real socket, in-process server)`
  send = (req) => sendHttp(base, agent!, req, HANG_MS)
}

await send({ family: 'warm', path: '/predict', contentType: 'application/json', payload: Buffer.from(`{"instances":[[${new Array(target.featureDim).fill(0).join(',')}]]}`) })
const tensorsBefore = numTensors(app)
const byStatus = new Map<number, number>()
const byFamily = new Map<string, number>()
const failures = new Map<string, { count: number; smallest: FuzzRequest; detail: string }>()
let cases = 0
let transportErrors = 0

async function runOne(req: FuzzRequest): Promise<void> {
  cases++
  byFamily.set(req.family, (byFamily.get(req.family) ?? 0) + 1)
  let why: string | undefined
  try {
    const res = await send(req)
    byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1)
    why = checkResponse(target, req, res)
  } catch (err) {
    // A reset connection is a failure too: the interface promises an HTTP answer to every request.
    if (!(err instanceof HangError)) transportErrors++
    why = `${err instanceof HangError ? 'hang' : 'transport error'}: ${(err as Error).message.split('\n')[0]}`
  }
  if (why === undefined) return
  const reason = why.split(':')[0]!.replace(/\d+/g, 'N')
  const f = failures.get(reason)
  if (!f) failures.set(reason, { count: 1, smallest: req, detail: why })
  else {
    f.count++
    if (req.payload.length < f.smallest.payload.length) Object.assign(f, { smallest: req, detail: why })
  }
}

const t0 = performance.now()
const CHUNK = 1000 // generated lazily: 100,000 requests at once would hold gigabytes of bodies
const progressEvery = Math.max(CHUNK, Math.floor(runs / 20))
for (let chunk = 0; chunk * CHUNK < runs; chunk++) {
  const batch = fc.sample(requestArb(target), { numRuns: Math.min(CHUNK, runs - chunk * CHUNK), seed: seed + chunk })
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batch.length) await runOne(batch[next++]!)
    }),
  )
  if (cases % progressEvery === 0) process.stderr.write(`  ${cases}/${runs} cases, ${failures.size} failure kinds, ${Math.round(performance.now() - t0) / 1000} s\n`)
}
const seconds = (performance.now() - t0) / 1000
const ready = (await app.inject('/health/ready')).statusCode
const tensorsAfter = numTensors(app)

const summary = {
  at: new Date().toISOString(),
  transport,
  seed,
  concurrency,
  cases,
  seconds: Math.round(seconds * 10) / 10,
  casesPerSecond: Math.round(cases / seconds),
  byFamily: Object.fromEntries(byFamily),
  byStatus: Object.fromEntries([...byStatus].sort((a, b) => a[0] - b[0])),
  transportErrors,
  readyAfter: ready === 200,
  tensors: { before: tensorsBefore, after: tensorsAfter },
  failures: [...failures].map(([reason, f]) => ({ reason, count: f.count, detail: f.detail, reproducer: describe(f.smallest) })),
  machine: machine(),
}
console.log(`fuzz: ${cases} cases in ${summary.seconds} s (${summary.casesPerSecond}/s) over ${transport}, seed ${seed}`)
console.log(`  families: ${JSON.stringify(summary.byFamily)}`)
console.log(`  statuses: ${JSON.stringify(summary.byStatus)}; transport errors: ${transportErrors}`)
console.log(`  afterwards: ready=${summary.readyAfter}, tfjs tensors ${tensorsBefore} -> ${tensorsAfter}`)
if (failures.size === 0) console.log('  failures: none')
for (const f of summary.failures) console.log(`  FAILURE x${f.count}: ${f.detail}\n    reproducer: ${f.reproducer}`)
await mkdir(new URL('results/', import.meta.url), { recursive: true })
await writeFile(new URL('results/fuzz.json', import.meta.url), `${JSON.stringify(summary, null, 2)}\n`)

agent?.destroy()
await app.close()
await rm(dir, { recursive: true, force: true })
process.exit(failures.size === 0 && ready === 200 && tensorsAfter === tensorsBefore ? 0 : 1)

/** One request over a real socket: a reset connection rejects, a request never answered is a HangError. */
function sendHttp(base: URL, agent: Agent, req: FuzzRequest, timeoutMs: number): Promise<FuzzResponse> {
  const headers: Record<string, string | string[] | number> = { 'content-length': req.payload.length }
  if (req.contentType !== undefined) headers['content-type'] = req.contentType
  const done = new Promise<FuzzResponse>((resolve, reject) => {
    const r = httpRequest({ host: base.hostname, port: base.port, method: 'POST', path: req.path, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    r.on('error', reject)
    r.end(req.payload)
  })
  return withTimeout(done, timeoutMs, describe(req))
}
