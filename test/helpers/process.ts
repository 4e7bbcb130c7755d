// Starts the real server process (src/main.ts through tsx), finds its port from the "listening" log line and waits
// until /health/ready says the model is loaded (the server listens first, then loads).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ServerProcess {
  child: ChildProcess
  url: string
  output: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Node flags that run the TypeScript sources, the engine's worker thread included (tools/lib/ts-workers.ts). */
export const TS_NODE_FLAGS = ['--import', 'tsx', '--import', './tools/lib/ts-workers.ts']

/** Spawns `node --import tsx src/main.ts` on port 0 with env, collecting stdout and stderr together. */
function spawnServer(env: Record<string, string>, args: string[]): Omit<ServerProcess, 'url'> {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'src/main.ts', ...args], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()))
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  return { child, output: () => out, exit }
}

/** Starts the server; resolves when it is ready, rejects if it exits first or takes over 60 s. */
export async function startServer(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const server = spawnServer(env, args)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 60 s:\n${server.output()}`)), 60_000)
    const check = () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(server.output())
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    server.child.stdout!.on('data', check)
    void server.exit.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${server.output()}`))
    })
  })
  // As an orchestrator's readiness probe would: the process answers /health/ready 503 until its model is warm.
  const exited = server.exit.then(() => true)
  const giveUp = Date.now() + 60_000
  for (;;) {
    const ready = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false)
    if (ready) break
    if (await Promise.race([exited, sleep(20).then(() => false)])) throw new Error(`server exited before it was ready:\n${server.output()}`)
    if (Date.now() > giveUp) throw new Error(`server was not ready within 60 s:\n${server.output()}`)
  }
  return { ...server, url }
}

/** Runs the server expecting it to fail at start; returns its exit code and output (killed after 60 s). */
export async function runFailingServer(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; output: string }> {
  const server = spawnServer(env, args)
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 60_000)
  const { code } = await server.exit
  clearTimeout(timer)
  return { code, output: server.output() }
}
