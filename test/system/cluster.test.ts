// Multi-process mode: MHE_WORKERS=2 starts two workers behind one port; both answer (x-mhe-worker names the pid),
// a worker killed from outside is replaced, and SIGTERM stops everything with exit code 0.
import t from 'tap'
import { request } from 'node:http'
import { testBundle } from '../helpers/server.js'
import { startServer, until } from '../helpers/process.js'

/** GET on a fresh connection (no keep-alive), so the primary hands each request to the next worker. */
function get(url: string): Promise<{ status: number; worker: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, worker: res.headers['x-mhe-worker'] as string | undefined, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('MHE_WORKERS=2: two workers answer, a dead one is replaced, SIGTERM exits 0', async (t) => {
  const bundle = await testBundle(t, { featureDim: 4, heads: [3, 3], numLabels: 9, seed: 2 })
  const srv = await startServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', MHE_WORKERS: '2', MHE_DRAIN_DELAY_MS: '0' })
  t.teardown(() => {
    if (srv.child.exitCode === null) srv.child.kill('SIGKILL')
  })
  await until('both workers listening', () => /all workers listening/.test(srv.output()), srv.output)

  const seen = new Set<string>()
  for (let i = 0; i < 20 && seen.size < 2; i++) {
    const r = await get(`${srv.url}/health/ready`)
    t.equal(r.status, 200)
    if (r.worker) seen.add(r.worker)
  }
  t.equal(seen.size, 2, `two distinct workers answered: ${[...seen].join(', ')}`)
  t.notOk(seen.has(String(srv.child.pid)), 'the primary itself does not serve')
  const predict = await fetch(`${srv.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [[0.1, 0.2, 0.3, 0.4]] }),
  })
  t.equal(predict.status, 200, 'a worker predicts')

  // Kill one worker from outside: the primary starts another and the service keeps answering.
  const victim = [...seen][0]!
  process.kill(Number(victim), 'SIGKILL')
  await until('a replacement worker', () => /worker died; starting a new one/.test(srv.output()), srv.output)
  await until(
    'a new worker answering',
    async () => {
      const r = await get(`${srv.url}/health/ready`).catch(() => undefined)
      return r?.status === 200 && r.worker !== undefined && !seen.has(r.worker)
    },
    srv.output,
  )
  const after = await fetch(`${srv.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [[0.1, 0.2, 0.3, 0.4]] }),
  })
  t.equal(after.status, 200, 'the service predicts again after a worker was killed')

  srv.child.kill('SIGTERM')
  const { code, signal } = await srv.exit
  t.equal(signal, null)
  t.equal(code, 0, 'SIGTERM: workers drain, the primary exits 0')
  t.match(srv.output(), /all workers stopped/)
})

t.test('MHE_WORKERS=2 with a broken bundle: start-up fails with exit 1, no restart loop', async (t) => {
  const bundle = await testBundle(t, { featureDim: 4, heads: [3, 3], numLabels: 9, seed: 2 })
  const { writeFile } = await import('node:fs/promises')
  await writeFile(`${bundle.dir}/labels.txt`, 'only-one-label\n')
  const { runFailingServer } = await import('../helpers/process.js')
  const { code, output } = await runFailingServer({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', MHE_WORKERS: '2' })
  t.equal(code, 1)
  t.match(output, /labels\.txt/, 'the worker says what is wrong with the bundle')
  t.match(output, /a worker failed to start/)
})

t.test('one per core (MHE_WORKERS=0) honours a container CPU limit', async (t) => {
  const { cgroupCpuQuota, workerCount } = await import('../../src/cluster.js')
  const files = (map: Record<string, string>) => (f: string) => {
    const v = map[f]
    if (v === undefined) throw new Error('ENOENT')
    return v
  }
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })), 1.5, 'cgroup v2 limit')
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined, 'cgroup v2 unlimited')
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), 2, 'cgroup v1 limit')
  t.equal(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' })), undefined, 'cgroup v1 unlimited')
  t.equal(cgroupCpuQuota(files({})), undefined, 'no cgroup files')
  t.equal(workerCount({ workers: 3 }), 3, 'an explicit count is kept')
  t.ok(workerCount({ workers: 0 }) >= 1, 'one per core is at least one')
})
