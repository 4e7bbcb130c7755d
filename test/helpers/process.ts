// Starts the real server process (src/main.ts through tsx) and finds its port from the "listening" log line.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

export interface ServerProcess {
  child: ChildProcess
  url: string
  output: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs `tsx src/main.ts` with env; resolves when it listens, rejects if it exits first or takes over 60 s. */
export async function startServer(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()))
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within 60 s:\n${out}`)), 60_000)
    const check = () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', check)
    void exit.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${out}`))
    })
  })
  return { child, url, output: () => out, exit }
}

/** Runs `tsx src/main.ts` expecting it to fail at start; returns its exit code and output. */
export async function runFailingServer(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()))
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = await once(child, 'exit')
  clearTimeout(timer)
  return { code: code as number | null, output }
}
