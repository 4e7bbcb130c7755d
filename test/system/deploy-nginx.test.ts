// deploy/nginx.conf for real: `nginx -t`, then nginx (Debian's) in front of two real server processes
// (`node dist/src/main.js`, as the image runs it) on 127.0.0.1. Requests are spread over both replicas; a
// replica SIGKILLed mid-load and another SIGTERMed (drained) mid-load cost the clients no failed request.
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Agent, request } from 'node:http'
import { writeFileSync } from 'node:fs'
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomFeatures, referenceTopK, type MadeBundle } from '../helpers/bundles.js'
import { tempDir, testBundle } from '../helpers/server.js'
import { findTool, keptLines, markedCount, renderLocalNginx, unmarkedLines } from '../helpers/deploy.js'
import { childEnv, killOnExit } from '../helpers/process.js'

const CONF = 'deploy/nginx.conf'
const RETRY = 'proxy_next_upstream error timeout http_502 http_503 non_idempotent;'
const nginx = findTool('nginx')

if (!nginx) {
  t.notOk(process.env.CI, 'nginx is installed in CI (.ci/run: apt-get install nginx)')
  t.skip('nginx is not installed here (Debian: apt-get install nginx)', async () => {})
} else {
  t.test('nginx -t accepts deploy/nginx.conf rendered for 127.0.0.1, and only @local lines changed', async (t) => {
    const conf = await readFile(CONF, 'utf8')
    t.ok(conf.split('\n').some((l) => l.trim() === RETRY), 'retries another replica, POST included')
    const dir = await tempDir(t, 'mhe-nginx-')
    const rendered = renderLocalNginx(conf, { dir, port: 1, upstreamPorts: [2, 3] })
    t.same(keptLines(rendered), unmarkedLines(conf), 'every unmarked line kept byte for byte, in order')
    t.equal(markedCount(conf), 11, 'the 11 marked lines: listen, server, resolver, pid, 2 logs, 5 temp paths')
    const check = nginxTest(dir, rendered)
    t.equal(check.status, 0, `nginx -t ${check.output}`)
    const broken = rendered.replace(RETRY, RETRY.replace('non_idempotent', 'non_idempotnet'))
    t.not(nginxTest(dir, broken).status, 0, 'nginx -t rejects a misspelt retry condition')
  })

  t.test('nginx in front of two replicas: spread, SIGKILL and SIGTERM mid-load, no failed request', async (t) => {
    await ensureBuilt(t)
    const d = 8
    const heads = [4, 5]
    const numLabels = 18 // product 20: ids 18, 19 are never valid answers
    const bundle = await testBundle(t, { featureDim: d, heads, numLabels, seed: 5, name: 'lb' })
    const [portA, portB, portLb, portClosed] = await freePorts(4)
    const a = `127.0.0.1:${portA!}`
    const b = `127.0.0.1:${portB!}`

    let replicaA = await startReplica(t, portA!, bundle.dir)
    const replicaB = await startReplica(t, portB!, bundle.dir)

    // The image's HEALTHCHECK script, on a ready replica and on a port nobody listens on.
    t.equal(runHealthcheck(portA!), 0, 'healthcheck.mjs: exit 0 on a ready replica')
    t.equal(runHealthcheck(portClosed!), 1, 'healthcheck.mjs: exit 1 when nothing answers')
    // What deploy/prometheus.yml scrapes on every replica.
    for (const port of [portA!, portB!]) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`)
      t.equal(res.status, 200, `GET /metrics on :${port}`)
      t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
      t.match(await res.text(), /^# TYPE \w+ (counter|gauge|histogram)$/m)
    }

    const dir = await tempDir(t, 'mhe-nginx-')
    await chmod(dir, 0o755) // nginx workers run as "nobody" when the test runs as root
    const lb = await startNginx(t, dir, renderLocalNginx(await readFile(CONF, 'utf8'), { dir, port: portLb!, upstreamPorts: [portA!, portB!] }), portLb!)
    const client = new Client(`http://127.0.0.1:${portLb!}`, bundle)

    // Phase 1: 200 requests, 6 at a time; replica A is SIGKILLed when 80 have been answered.
    const phase1 = await client.load({ concurrency: 6, triggerAt: 80, trigger: () => replicaA.child.kill('SIGKILL'), more: (n) => n < 200 })
    const log1 = await lb.upstreams()
    t.same(phase1.failures, [], 'phase 1: every request answered 200 with the exact top-k')
    t.equal(phase1.ok.length, phase1.done)
    const before = phase1.ok.filter((r) => r.endedBeforeTrigger).map((r) => lastUpstream(log1, r.rid))
    t.ok(before.includes(a) && before.includes(b), `before the kill both replicas served (${count(before, a)} A, ${count(before, b)} B)`)
    const after = phase1.ok.filter((r) => r.startedAfterTrigger).map((r) => lastUpstream(log1, r.rid))
    t.ok(after.length > 0, `${after.length} requests sent after the kill`)
    t.same(new Set(after), new Set([b]), 'after the kill B answered them all')
    const retried = phase1.ok.filter((r) => (log1.get(r.rid) ?? []).length > 1).map((r) => log1.get(r.rid)!)
    t.ok(retried.length >= 1, `nginx retried ${retried.length} request(s) on B: ${JSON.stringify(retried.slice(0, 3))}`)
    t.ok(retried.every((tried) => tried[0] === a && tried.at(-1) === b), 'each retry went from the dead A to B')

    // Phase 2, a rolling restart: A comes back; once nginx uses it again, B gets SIGTERM mid-load. B turns
    // unready, answers for MHE_DRAIN_DELAY_MS, closes its listener, finishes and exits; nginx moves to A. The
    // load is paced (6 workers, 20 ms apart) and goes on until 12 requests sent after B's exit are answered.
    replicaA = await startReplica(t, portA!, bundle.dir)
    t.ok(await client.untilServedBy(a, lb), 'nginx sends requests to the restarted A again')
    const readyAfterTerm = readiness(portB!, t)
    const sentAfterExit = (ok: readonly Answer[]) => ok.filter((r) => r.start > (replicaB.exitedAt() ?? Infinity)).length
    const phase2 = await client.load({
      concurrency: 6,
      triggerAt: 40,
      trigger: () => replicaB.child.kill('SIGTERM'),
      more: (_, ok) => sentAfterExit(ok) < 12,
      paceMs: 20,
    })
    const log2 = await lb.upstreams()
    t.same(phase2.failures, [], `phase 2: all ${phase2.done} requests answered 200 with the exact top-k`)
    const exitB = await replicaB.exit
    t.same(exitB, { code: 0, signal: null }, `B drained and exited cleanly after SIGTERM${exitB.code === 0 ? '' : `: ${replicaB.output().slice(-3000)}`}`)
    const statuses = await readyAfterTerm
    t.equal(statuses[0], 200, 'B was ready before SIGTERM')
    t.equal(statuses.at(-1), 503, `B's /health/ready turned 503 after SIGTERM (${statuses.length} probes), while it still ran`)
    const afterExit = phase2.ok.filter((r) => r.start > replicaB.exitedAt()!).map((r) => lastUpstream(log2, r.rid))
    t.ok(afterExit.length >= 12, `${afterExit.length} requests sent after B exited`)
    t.same(new Set(afterExit), new Set([a]), 'A answered all of them')
    t.equal(lb.child.exitCode, null, 'nginx kept running')
  })
}

// ---------------------------------------------------------------------------------------------------------------

/** What the helpers below need of a tap test. */
interface T {
  teardown(fn: () => unknown): void
  comment(...message: unknown[]): void
  ok(value: unknown, message: string): void
}

function nginxTest(dir: string, conf: string): { status: number | null; output: string } {
  const file = join(dir, 'test.conf')
  writeFileSync(file, conf)
  const r = spawnSync(nginx!, ['-t', '-q', '-p', `${dir}/`, '-c', file, '-e', join(dir, 'error.log')], { encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

/** dist/ from `npm run build` (tsc -p tsconfig.build.json), rebuilt when a source file is newer. */
async function ensureBuilt(t: T): Promise<void> {
  const main = 'dist/src/main.js'
  const built = await stat(main).then((s) => s.mtimeMs, () => 0)
  const newest = Math.max(...(await sourceTimes('src')))
  if (built > newest) return
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8', timeout: 300_000 })
  // tsc still emits when another module has a type error; the type-check step of `npm test` reports those.
  if (tsc.status !== 0) t.comment(`tsc -p tsconfig.build.json exited ${tsc.status}: ${tsc.stdout.slice(0, 2000)}`)
  t.ok((await stat(main).then((s) => s.mtimeMs, () => 0)) > newest, `${main} built`)
}

async function sourceTimes(dir: string): Promise<number[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const times = await Promise.all(
    entries.map(async (e) => {
      const p = join(dir, e.name)
      if (e.isDirectory()) return sourceTimes(p)
      return e.name.endsWith('.ts') ? [(await stat(p)).mtimeMs] : []
    }),
  )
  return times.flat()
}

/** Ports the kernel says are free now (nginx needs fixed ports: no port 0 behind it). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createServer()
      s.listen(0, '127.0.0.1')
      await once(s, 'listening')
      return s
    }),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

interface Replica {
  child: ChildProcess
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  exitedAt: () => number | undefined
  output: () => string
}

/** `node dist/src/main.js` on PORT, as the image starts it; resolves once /health/ready answers 200. */
async function startReplica(t: T, port: number, model: string): Promise<Replica> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: childEnv({ PORT: String(port), HOST: '127.0.0.1', MHE_MODEL: model, MHE_BACKEND: 'auto', LOG_LEVEL: 'warn' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  killOnExit(child)
  let out = ''
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()))
  let exitedAt: number | undefined
  const exit = once(child, 'exit').then(([code, signal]) => {
    exitedAt = performance.now()
    return { code: code as number | null, signal: signal as NodeJS.Signals | null }
  })
  t.teardown(async () => {
    if (exitedAt === undefined) {
      child.kill('SIGKILL')
      await exit
    }
  })
  for (let i = 0; i < 300; i++) {
    if (exitedAt !== undefined) throw new Error(`replica on ${port} exited before it was ready:\n${out}`)
    const status = await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.status, () => 0)
    if (status === 200) return { child, exit, exitedAt: () => exitedAt, output: () => out }
    await sleep(200)
  }
  throw new Error(`replica on ${port} not ready within 60 s:\n${out}`)
}

/**
 * Polls /health/ready on one kept-alive connection until it answers 503 or the connection ends (0). Opened while
 * the replica is ready and kept busy, the connection outlives the replica's listener, so the not-ready state is
 * seen however long the drain is: the statuses seen, in order.
 */
async function readiness(port: number, t: T): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const get = () =>
    new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/health/ready', agent }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', () => resolve(0))
      req.end()
    })
  const seen: number[] = []
  while (seen.at(-1) !== 503 && seen.at(-1) !== 0) {
    seen.push(await get())
    await sleep(25)
  }
  agent.destroy()
  return seen
}

function runHealthcheck(port: number): number | null {
  return spawnSync(process.execPath, ['deploy/healthcheck.mjs'], { env: childEnv({ PORT: String(port), HOST: '0.0.0.0' }), timeout: 10_000 }).status
}

interface Lb {
  child: ChildProcess
  /** request id -> the replicas nginx tried for it, in order (from the access log). */
  upstreams: () => Promise<Map<string, string[]>>
}

async function startNginx(t: T, dir: string, conf: string, port: number): Promise<Lb> {
  const file = join(dir, 'nginx.conf')
  await writeFile(file, conf)
  const child = spawn(nginx!, ['-p', `${dir}/`, '-c', file, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: 'ignore' })
  killOnExit(child, 'SIGTERM') // nginx's fast shutdown: the master stops its workers
  const exit = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM') // fast shutdown: the master stops its workers, then exits
      await exit
    }
  })
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    if ((await fetch(`http://127.0.0.1:${port}/nginx-health`).then((r) => r.status, () => 0)) === 200) {
      const upstreams = async () => {
        const log = await readFile(join(dir, 'access.log'), 'utf8')
        return new Map(
          [...log.matchAll(/rid=(\w+) upstream=\[([^\]]*)\]/g)].map((m) => [m[1]!, m[2]!.split(/, ?| : /).filter(Boolean)]),
        )
      }
      return { child, upstreams }
    }
    await sleep(100)
  }
  throw new Error(`nginx did not start: ${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`)
}

const count = (xs: string[], x: string): number => xs.filter((y) => y === x).length
function lastUpstream(log: Map<string, string[]>, rid: string): string {
  return log.get(rid)?.at(-1) ?? `no log line for ${rid}`
}

interface Answer {
  rid: string
  start: number
  endedBeforeTrigger: boolean
  startedAfterTrigger: boolean
}

/** Sends /predict requests through the load balancer and checks each answer against the plain-loop reference. */
class Client {
  private seq = 0
  constructor(
    private readonly url: string,
    private readonly bundle: MadeBundle,
  ) {}

  /** One POST /predict; its request id (nginx's, echoed by the service) or a description of what went wrong. */
  async predict(): Promise<{ rid: string } | { error: string }> {
    const { featureDim: d, heads, numLabels } = this.bundle.manifest
    const n = 1 + (this.seq % 3)
    const x = randomFeatures(n, d, 1000 + this.seq++)
    const instances = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * d, (i + 1) * d)))
    try {
      const res = await fetch(`${this.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances, top_k: 3 }),
        signal: AbortSignal.timeout(20_000),
      })
      const body = (await res.json()) as { predictions?: { top_k: { label_id: number }[] }[] }
      if (res.status !== 200) return { error: `${res.status} ${JSON.stringify(body)}` }
      const got = (body.predictions ?? []).map((p) => p.top_k.map((c) => c.label_id))
      const want = instances.map((row) => referenceTopK(row, this.bundle.weights, heads, numLabels, 3).map((c) => c.id))
      if (JSON.stringify(got) !== JSON.stringify(want)) return { error: `wrong answer ${JSON.stringify(got)} != ${JSON.stringify(want)}` }
      return { rid: res.headers.get('x-request-id') ?? 'none' }
    } catch (err) {
      return { error: `network: ${(err as Error).message}` }
    }
  }

  /**
   * Requests, `concurrency` at a time, each worker pausing `paceMs` between two; calls `trigger` once `triggerAt`
   * have been answered; stops when `more(answered, answers)` says so (at most 3000 requests in any case).
   */
  async load(o: { concurrency: number; triggerAt: number; trigger: () => void; more: (done: number, ok: readonly Answer[]) => boolean; paceMs?: number }) {
    const ok: Answer[] = []
    const failures: string[] = []
    let done = 0
    let triggeredAt: number | undefined
    const worker = async () => {
      for (let sent = 0; o.more(done, ok) && done < 3000; sent++) {
        const start = performance.now()
        const r = await this.predict()
        if ('error' in r) failures.push(r.error)
        else {
          ok.push({
            rid: r.rid,
            start,
            endedBeforeTrigger: triggeredAt === undefined,
            startedAfterTrigger: triggeredAt !== undefined && start > triggeredAt,
          })
        }
        if (++done === o.triggerAt) {
          triggeredAt = performance.now()
          o.trigger()
        }
        if (o.paceMs) await sleep(o.paceMs)
      }
    }
    await Promise.all(Array.from({ length: o.concurrency }, worker))
    return { ok, failures, done }
  }

  /** Single requests until nginx has routed one to `upstream` (it skips a failed replica for fail_timeout = 5 s). */
  async untilServedBy(upstream: string, lb: Lb): Promise<boolean> {
    for (let i = 0; i < 100; i++) {
      const r = await this.predict()
      if ('rid' in r && (await lb.upstreams()).get(r.rid)?.at(-1) === upstream) return true
      await sleep(200)
    }
    return false
  }
}
