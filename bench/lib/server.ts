// Starts real server processes for the benchmarks (compiled dist/src/main.js, or a bench script through tsx) and
// reports when they are ready and how much memory they hold.

import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')

export interface Running {
  child: ChildProcess
  url: string
  /** ms from spawn to /health/ready answering 200. */
  readyMs: number
  /** CPU time the process (and its workers) used until then: start-up cost without the machine's load. */
  readyCpuMs: number
  output: () => string
  /** Bytes the server has logged so far (stdout and stderr). */
  logBytes: () => number
  /** Resident set size of the process and its children (cluster workers), in MB. */
  rssMb: () => number
  /** CPU time used so far by the process and its children, in ms (10 ms resolution). */
  cpuMs: () => number
  stop: () => Promise<number | null>
}

/** VmRSS of one pid in kB, 0 if gone. */
function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** CPU time (user + system) of one pid in ms, 0 if gone. */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

export function treeCpuMs(pid: number): number {
  let ms = cpuMsOf(pid)
  for (const c of children(pid)) ms += cpuMsOf(c)
  return ms
}

export function treeRssMb(pid: number): number {
  let kb = rssKb(pid)
  for (const c of children(pid)) kb += rssKb(c)
  return kb / 1024
}

export interface StartOptions {
  /** Script and node args; default: the compiled service. */
  argv?: string[]
  env?: Record<string, string>
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[]
}

/** Spawns a server on a free port; resolves when it listens (and is ready). Throws with its output if it dies. */
export async function startServer(opts: StartOptions = {}): Promise<Running> {
  const dist = join(ROOT, 'dist/src/main.js')
  if (!opts.argv && !existsSync(dist)) throw new Error(`${dist} missing: run npm run build first`)
  const argv = opts.argv ?? [dist]
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  // The server writes its log to a file, as to a log collector: reading a pipe here would put the cost of the
  // server's log lines on the load generator, which shares the machine's cores.
  const logDir = mkdtempSync(join(tmpdir(), 'mhe-bench-'))
  const logFile = join(logDir, 'server.log')
  const fd = openSync(logFile, 'w')
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), ...argv], {
    cwd: ROOT,
    // MALLOC_MMAP_THRESHOLD_ as `npm start` and the image set it (README, Model repository: Memory).
    env: { MALLOC_MMAP_THRESHOLD_: '131072', ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...opts.env, PORT: String(port) },
    stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  /** The last 200 kB of the log. */
  const output = (): string => {
    try {
      const size = statSync(logFile).size
      const text = readFileSync(logFile)
      return text.subarray(Math.max(0, size - 200_000)).toString()
    } catch {
      return ''
    }
  }
  const exit = once(child, 'exit')
  let exited = false
  void exit.then(() => (exited = true))
  // Ready = /health/ready answers 200: model loaded and warmed up (the ceiling server answers it at once).
  const deadline = t0 + 180_000
  for (;;) {
    if (exited) throw new Error(`server exited before ready:\n${output().slice(-4000)}`)
    if (performance.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`server not ready within 180 s:\n${output().slice(-4000)}`)
    }
    const ok = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 10))
  }
  const readyMs = performance.now() - t0
  const pid = child.pid!
  const readyCpuMs = treeCpuMs(pid)
  return {
    child,
    url,
    readyMs,
    readyCpuMs,
    output,
    logBytes: () => {
      try {
        return statSync(logFile).size
      } catch {
        return 0
      }
    },
    rssMb: () => treeRssMb(pid),
    cpuMs: () => treeCpuMs(pid),
    stop: async () => {
      if (!exited) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const [code] = (await exit) as [number | null]
      clearTimeout(timer)
      rmSync(logDir, { recursive: true, force: true })
      return code
    },
  }
}
