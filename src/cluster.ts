// Multi-process mode (MHE_WORKERS != 1): the primary forks N workers with node:cluster; each listens on the same
// port and loads the model. The primary relays SIGTERM/SIGINT and the repository's control requests
// (src/cluster-control.ts), restarts a worker that dies after it was ready, and exits once all drained.

import cluster, { type Worker } from 'node:cluster'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import type { Server } from 'node:http'
import { pino } from 'pino'
import type { Config } from './config.js'
import { shutdownBudgetMs } from './http/drain.js'
import { relayControl } from './cluster-control.js'

/** Message the primary sends a worker to drain and exit (IPC, so a worker never counts it as a second signal). */
const STOP = 'mhe:stop'
/** Message a worker sends the primary once its model is loaded and warmed up. */
const READY = 'mhe:ready'
/** Header naming the worker process that answered (multi-process mode only). */
export const WORKER_HEADER = 'x-mhe-worker'
/** A worker dying again this soon after its start counts toward a crash loop. */
const CRASH_WINDOW_MS = 10_000
const MAX_QUICK_CRASHES = 5

/** Processes to run: MHE_WORKERS, with 0 meaning one per core we may use (CPU affinity and cgroup quota). */
export function workerCount(config: Pick<Config, 'workers'>): number {
  if (config.workers !== 0) return config.workers
  const quota = cgroupCpuQuota()
  return Math.max(1, Math.min(availableParallelism(), quota === undefined ? Infinity : Math.ceil(quota)))
}

/**
 * Cores allowed by a container's CPU limit (cgroup v2 cpu.max, or v1 cfs quota), undefined when unlimited.
 * availableParallelism() sees the host's cores, so in a 1-CPU pod on a 64-core node it would say 64.
 */
export function cgroupCpuQuota(read: (file: string) => string = (f) => readFileSync(f, 'utf8')): number | undefined {
  const tryRead = (f: string): string | undefined => {
    try {
      return read(f).trim()
    } catch {
      return undefined
    }
  }
  const v2 = tryRead('/sys/fs/cgroup/cpu.max')?.split(/\s+/)
  if (v2 && v2[0] !== undefined && v2[0] !== 'max' && Number(v2[1]) > 0) return Number(v2[0]) / Number(v2[1])
  const q = Number(tryRead('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'))
  const p = Number(tryRead('/sys/fs/cgroup/cpu/cpu.cfs_period_us'))
  return q > 0 && p > 0 ? q / p : undefined
}

/**
 * Runs the primary: forks `n` workers (this same script) and supervises them. Never resolves; exits the process
 * with 0 when every worker stopped cleanly after a signal, 1 on a start-up failure or an unclean stop.
 */
export function runPrimary(config: Config, n: number): void {
  const log = pino({ level: config.logLevel }).child({ role: 'primary' })
  const started = new Map<Worker, number>()
  const listening = new Set<Worker>()
  const ready = new Set<Worker>()
  let stopping = false
  let failed = false
  let quickCrashes = 0

  const fork = (): void => {
    const w = cluster.fork()
    started.set(w, Date.now())
    // A control request to one worker (the repository's load, unload, index) runs on every worker that listens.
    relayControl(w, () => listening)
    w.on('listening', () => {
      listening.add(w)
      // Asked to stop before it listened: it can drain only now that it is up.
      if (stopping) w.send(STOP)
    })
    w.on('message', (m) => {
      if (m !== READY) return
      ready.add(w)
      if (ready.size === n) log.info({ workers: n, pids: [...ready].map((x) => x.process.pid) }, 'all workers listening and ready')
    })
  }

  const finish = (): void => {
    if (Object.values(cluster.workers ?? {}).some((w) => w !== undefined && !w.isDead())) return
    log.info({ failed }, 'all workers stopped')
    process.exit(failed ? 1 : 0)
  }

  cluster.on('exit', (w, code, signal) => {
    listening.delete(w)
    const wasReady = ready.delete(w)
    const age = Date.now() - (started.get(w) ?? 0)
    started.delete(w)
    if (stopping) {
      if (code !== 0) failed = true
      finish()
      return
    }
    // A worker that never got ready hit a start-up error (bad bundle, port taken): it already said why; stop all.
    if (!wasReady) {
      log.error({ pid: w.process.pid, code, signal }, 'a worker failed to start; stopping')
      failed = true
      stopAll()
      return
    }
    quickCrashes = age < CRASH_WINDOW_MS ? quickCrashes + 1 : 0
    if (quickCrashes >= MAX_QUICK_CRASHES) {
      log.error({ crashes: quickCrashes }, 'workers keep dying right after start; stopping')
      failed = true
      stopAll()
      return
    }
    log.error({ pid: w.process.pid, code, signal }, 'worker died; starting a new one')
    fork()
  })

  const killAll = (): never => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL')
    process.exit(1)
  }

  const stopAll = (): void => {
    if (stopping) return
    stopping = true
    // Workers still starting get the message when they listen (above).
    for (const w of listening) if (w.isConnected()) w.send(STOP)
    // Workers have their own grace timers; this only catches one that hangs past them.
    const cap = shutdownBudgetMs(config) + 5000
    setTimeout(() => {
      log.error({ capMs: cap }, 'workers did not stop in time; killing them')
      killAll()
    }, cap).unref()
    finish()
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal, killing workers')
      killAll()
    }
    log.info({ signal }, 'stopping workers')
    stopAll()
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  log.info({ workers: n, pid: process.pid }, 'starting workers')
  for (let i = 0; i < n; i++) fork()
}

/** In a worker: tells the primary that this worker's model is loaded and warmed up. */
export function announceReady(): void {
  process.send?.(READY)
}

/**
 * In a worker: tags every response with the worker's pid, and drains (calls `stop`) when the primary says so or
 * goes away. `stop` must be the same function the signal handlers call.
 */
export function joinCluster(server: Server, stop: (signal: NodeJS.Signals) => void): void {
  const pid = String(process.pid)
  // Before Fastify's handler, so the header is in every reply, errors included.
  server.prependListener('request', (_req, res) => res.setHeader(WORKER_HEADER, pid))
  let asked = false
  const once = (): void => {
    if (asked) return
    asked = true
    stop('SIGTERM')
  }
  process.on('message', (m) => {
    if (m === STOP) once()
  })
  // The primary died: nobody will restart or stop us, so drain and leave.
  process.on('disconnect', once)
  // A signal sent to the whole process group (Ctrl-C) reaches the workers directly, before the primary's message.
  process.prependListener('SIGINT', () => (asked = true))
  process.prependListener('SIGTERM', () => (asked = true))
}
