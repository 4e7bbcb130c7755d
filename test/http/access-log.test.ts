// Request logging (src/http/access-log.ts) in the real app: one access line per request when it has been answered,
// at info only for errors and slow requests, every request at debug; each line bound to its request id.
import t from 'tap'
import { buildApp } from '../../src/http/app.js'
import { loadConfig } from '../../src/config.js'
import { testBundle } from '../helpers/server.js'
import { lazyChildLogger } from '../../src/http/access-log.js'
import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'

const d = 4
const bundle = await testBundle(t, { featureDim: d, heads: [3, 3], numLabels: 9, seed: 3, outputs: 'concat' })
const ok = { method: 'POST' as const, url: '/predict?top_k=2', payload: { instances: [[0.1, 0.2, 0.3, 0.4]] } }
const bad = { method: 'POST' as const, url: '/predict', payload: { instances: [[0.1]] } }

interface Line {
  level: number
  msg: string
  reqId?: string
  method?: string
  url?: string
  statusCode?: number
  responseTime?: number
}

/** The app with a pino logger at `level` whose lines are collected. */
async function logged(t: { teardown(fn: () => unknown): void }, env: Record<string, string>): Promise<{ inject: (o: typeof ok) => Promise<number>; lines: Line[] }> {
  const lines: Line[] = []
  const config = loadConfig({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', MHE_MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
  const app = await buildApp(config, { logger: { level: config.logLevel, stream: { write: (s: string) => void lines.push(JSON.parse(s) as Line) } } })
  t.teardown(() => app.close())
  lines.length = 0 // start-up lines
  return { inject: async (o) => (await app.inject(o)).statusCode, lines }
}

const requestLines = (lines: Line[]) => lines.filter((l) => l.msg === 'request completed' || l.msg === 'incoming request')

t.test('default (info): a quick 200 writes nothing, a 400 one info line with its request id', async (t) => {
  const app = await logged(t, {})
  t.equal(await app.inject(ok), 200)
  t.same(requestLines(app.lines), [], 'no line for a quick, successful request')
  t.equal(await app.inject(bad), 400)
  const [line, ...rest] = requestLines(app.lines)
  t.same(rest, [], 'one line per request, not two')
  t.match(line, { level: 30, msg: 'request completed', method: 'POST', url: '/predict', statusCode: 400, reqId: /^[0-9a-f-]{36}$/ })
  t.type(line?.responseTime, 'number')
})

t.test('LOG_LEVEL=debug: every request gets its one line, 2xx at debug', async (t) => {
  const app = await logged(t, { LOG_LEVEL: 'debug' })
  t.equal(await app.inject(ok), 200)
  t.equal(await app.inject(bad), 400)
  const lines = requestLines(app.lines)
  t.match(lines, [
    { level: 20, statusCode: 200, url: '/predict?(query not logged)' },
    { level: 30, statusCode: 400 },
  ])
  t.equal(lines.length, 2)
  t.not(lines[0]!.reqId, lines[1]!.reqId, 'each line bound to its own request')
})

t.test('MHE_SLOW_REQUEST_MS=0: every request is slow enough for an info line', async (t) => {
  const app = await logged(t, { MHE_SLOW_REQUEST_MS: '0' })
  t.equal(await app.inject(ok), 200)
  t.match(requestLines(app.lines), [{ level: 30, statusCode: 200 }])
})

t.test('LOG_LEVEL=warn: no access lines at all', async (t) => {
  const app = await logged(t, { LOG_LEVEL: 'warn' })
  t.equal(await app.inject(ok), 200)
  t.equal(await app.inject(bad), 400)
  t.same(requestLines(app.lines), [])
})

t.test('lazyChildLogger: the pino child is made on the first line at an enabled level, and carries the bindings', async (t) => {
  const lines: Line[] = []
  const parent = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) })
  let made = 0
  const original = parent.child as unknown as (this: unknown, b: pino.Bindings, o?: pino.ChildLoggerOptions) => pino.Logger
  // pino children inherit from their parent: counted with `this`, a grandchild is still a child of its own parent.
  parent.child = function (this: unknown, b: pino.Bindings, o?: pino.ChildLoggerOptions) {
    made++
    return original.call(this, b, o)
  } as unknown as typeof parent.child
  const log = lazyChildLogger(parent, { reqId: 'r1' }, {})
  for (const level of ['trace', 'debug', 'info'] as const) log[level]('quiet')
  t.equal(made, 0, 'no child for lines below the level')
  t.equal(log.level, 'warn')
  t.notOk((log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled('info'))
  log.warn({ a: 1 }, 'w')
  log.error('e')
  log.fatal('f')
  t.equal(made, 1, 'one child, made once')
  t.match(lines, [{ reqId: 'r1', a: 1, msg: 'w' }, { reqId: 'r1', msg: 'e' }, { reqId: 'r1', msg: 'f' }])
  log.level = 'info'
  log.info('now on')
  t.match(lines.at(-1), { reqId: 'r1', msg: 'now on' })
  t.ok((log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled('info'))
  log.child({ sub: 2 }).info('grandchild')
  t.match(lines.at(-1), { reqId: 'r1', sub: 2, msg: 'grandchild' })
  t.equal(made, 2, 'the grandchild is the only other child made')
  log.silent("nothing")

  // A route's own level, or a logger that is not pino: an ordinary child at once.
  const eager = lazyChildLogger(parent, { reqId: 'r2' }, { level: 'debug' })
  t.equal(eager.level, 'debug')
  const plain = { child: () => plain, level: 'info' } as unknown as FastifyBaseLogger
  t.equal(lazyChildLogger(plain, {}, {}), plain)
})

t.test('503s: a line each while rare; under a burst, the first line and then one count a second', async (t) => {
  const { AccessLog, REFUSAL_WINDOW_MS } = await import('../../src/http/access-log.js')
  const lines: { msg: string; statusCode?: number; refused?: number }[] = []
  const log = { info: (o: object, msg: string) => lines.push({ ...o, msg }), error() {}, debug() {} } as unknown as FastifyBaseLogger
  const access = new AccessLog(1000)
  const request = { method: 'POST', url: '/predict' } as never
  const refuse = () => access.requestCompleted(null, request, { statusCode: 503, elapsedTime: 0.5, log, server: { log } } as never)
  for (let i = 0; i < 50; i++) refuse()
  t.same(lines.map((l) => l.msg), ['request completed'], 'the first refusal of the burst gets its line, the others are counted')
  await new Promise((r) => setTimeout(r, REFUSAL_WINDOW_MS + 100))
  t.match(lines[1], { statusCode: 503, refused: 49 }, 'then one line with the count')
  await new Promise((r) => setTimeout(r, REFUSAL_WINDOW_MS + 100))
  t.equal(lines.length, 2, 'a quiet second writes nothing')
  refuse()
  t.match(lines[2], { msg: 'request completed', statusCode: 503 }, 'after the burst, a refusal gets its own line again')
  access.requestCompleted(null, request, { statusCode: 400, elapsedTime: 0.5, log, server: { log } } as never)
  t.match(lines[3], { statusCode: 400 }, 'other errors are never counted away')
})
