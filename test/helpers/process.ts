// Starts the real server process (src/main.ts through tsx), finds its port from the "listening" log line and waits
// until /health/ready says the model is loaded (the server listens first, then loads).
import { spawn, type ChildProcess } from 'node:child_process'
import tap from 'tap'
import { once } from 'node:events'

export interface ServerProcess {
  child: ChildProcess
  url: string
  output: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * The environment of a process a test starts: the test's own, with coverage recording off. tap's loader records
 * coverage in every node process a test starts, but a child compiles the TypeScript with tsx (or runs dist/), and
 * coverage of one file under two compilations does not merge: the report turned to nonsense (codec.ts at 42%)
 * whenever children exited cleanly. Coverage is what the in-process tests reach.
 */
export const childEnv = (env: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env })

const running = new Map<ChildProcess, NodeJS.Signals>()
const killAll = () => running.forEach((signal, c) => c.kill(signal))
process.once('exit', killAll)
// A timed-out test file is killed with SIGALRM, which runs no teardown and no exit handler: tap says so first.
tap.on('timeout', killAll)

/** Signals `child` when the test process ends, timed out or not: left behind, servers kept running for hours. */
export function killOnExit(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  running.set(child, signal)
  child.once('exit', () => running.delete(child))
}

/** Node flags that run the TypeScript sources, the engine's worker thread included (tools/lib/ts-workers.ts). */
export const TS_NODE_FLAGS = ['--import', 'tsx', '--import', './tools/lib/ts-workers.ts']

/** Spawns `node --import tsx src/main.ts` on port 0 with env, collecting stdout and stderr together. */
function spawnServer(env: Record<string, string>, args: string[]): Omit<ServerProcess, 'url'> {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'src/main.ts', ...args], {
    env: childEnv({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  killOnExit(child)
  let out = ''
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()))
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  return { child, output: () => out, exit }
}

/** Resolves with the first match of `pattern` in the output, checked as it arrives; rejects if the process exits first. */
export function waitForOutput(server: Omit<ServerProcess, 'url'>, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(server.output())
      if (!m) return
      server.child.stdout!.off('data', check)
      server.child.stderr!.off('data', check)
      resolve(m)
    }
    // Registered after spawnServer's own listeners, so output() already holds the chunk.
    server.child.stdout!.on('data', check)
    server.child.stderr!.on('data', check)
    check()
    void server.exit.then(({ code, signal }) => reject(new Error(`server exited (code ${code}, signal ${signal}) before printing ${pattern}:\n${server.output()}`)))
  })
}

/** Polls `cond` every 50 ms until it holds; gives up after 60 s, showing the server's output. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, output: () => string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await cond()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`gave up waiting for ${what}:\n${output()}`)
}

/** Starts the server; resolves when it listens, rejects if it exits first. Its model may still be loading. */
export async function startListeningServer(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const server = spawnServer(env, args)
  const [, url] = await waitForOutput(server, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
  return { ...server, url: url! }
}

/**
 * Starts the server and, as an orchestrator's readiness probe would, polls /health/ready until the model is loaded
 * and warmed up (the server listens first and answers 503 until then).
 */
export async function startServer(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const server = await startListeningServer(env, args)
  let exited = false
  void server.exit.then(() => (exited = true))
  const ready = () => exited || fetch(`${server.url}/health/ready`).then((r) => r.status === 200, () => false)
  await until('/health/ready to answer 200', ready, server.output)
  if (exited) throw new Error(`server exited before it was ready:\n${server.output()}`)
  return server
}

/** Runs the server expecting it to fail at start; returns its exit code and output (killed after 60 s). */
export async function runFailingServer(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; output: string }> {
  const server = spawnServer(env, args)
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 60_000)
  const { code } = await server.exit
  clearTimeout(timer)
  return { code, output: server.output() }
}
