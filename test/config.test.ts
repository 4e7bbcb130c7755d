// src/config.ts without a process: every setting from its variable and its flag, the defaults, and each message
// a bad value gets.
import t from 'tap'
import { BASE_RSS_BYTES, ConfigError, INLINE_ENGINE_RSS_BYTES, JSON_BODY_RSS_FACTOR, JSON_THREAD_RSS_BYTES, OPTIONS, loadConfig, memoryBudgetBytes, socketTimeouts, type Config } from '../src/config.js'

type Key = keyof Config

/** A valid value other than the default, as text, and what it parses to. */
const other: { [K in Key]: [string, Config[K]] } = {
  port: ['9123', 9123],
  host: ['0.0.0.0', '0.0.0.0'],
  modelDir: ['/srv/bundle', '/srv/bundle'],
  modelRepository: ['/srv/models', '/srv/models'],
  defaultModel: ['demo', 'demo'],
  repositoryPollS: ['5', 5],
  adminKeys: ['a1,a2', ['a1', 'a2']],
  backend: ['cpu', 'cpu'],
  maxBatch: ['32', 32],
  maxDelayMs: ['7', 7],
  admissionWaitMs: ['0', 0],
  maxQueue: ['8192', 8192],
  maxInstances: ['12', 12],
  maxTopK: ['3', 3],
  requestTimeoutMs: ['2500', 2500],
  bodyLimit: ['4096', 4096],
  bodyTimeoutMs: ['30000', 30000],
  maxConnections: ['64', 64],
  maxInflightBytes: ['20000000', 20000000],
  apiKeys: ['k1,k2', ['k1', 'k2']],
  shutdownGraceMs: ['0', 0],
  drainDelayMs: ['0', 0],
  keepAliveTimeoutMs: ['61000', 61000],
  workers: ['0', 0],
  engineThread: ['false', false],
  inlineBatch: ['0', 0],
  nativeDense: ['false', false],
  metricsAuth: ['true', true],
  maxEventLoopDelayMs: ['0', 0],
  slowRequestMs: ['250', 250],
  logLevel: ['debug', 'debug'],
}
const keys = Object.keys(OPTIONS) as Key[]
/** The 'auto' settings each setting moves. */
const DERIVED: Partial<Record<Key, Key[]>> = { requestTimeoutMs: ['bodyTimeoutMs'], bodyLimit: ['bodyTimeoutMs', 'maxInflightBytes'] }

/** The ConfigError message loadConfig throws, or a failure naming what it returned instead. */
function message(env: NodeJS.ProcessEnv, argv: string[] = []): string {
  try {
    return `no error: ${JSON.stringify(loadConfig(env, argv))}`
  } catch (err) {
    return err instanceof ConfigError ? err.message : `not a ConfigError: ${String(err)}`
  }
}

t.test('defaults', async (t) => {
  t.strictSame(loadConfig(), {
    port: 8080,
    host: '127.0.0.1',
    modelDir: 'models/demo',
    modelRepository: '',
    defaultModel: '',
    repositoryPollS: 0,
    adminKeys: [],
    backend: 'auto',
    maxBatch: 'auto',
    maxDelayMs: 'auto',
    admissionWaitMs: 1000,
    maxQueue: 4096,
    maxInstances: 1024,
    maxTopK: 300,
    requestTimeoutMs: 10000,
    bodyLimit: 16 * 1024 * 1024,
    bodyTimeoutMs: 10000 + 16000,
    maxConnections: 1024,
    maxInflightBytes: 64 * 1024 * 1024,
    apiKeys: [],
    shutdownGraceMs: 10000,
    drainDelayMs: 500,
    keepAliveTimeoutMs: 5000,
    workers: 1,
    engineThread: true,
    inlineBatch: 4,
    nativeDense: true,
    metricsAuth: false,
    maxEventLoopDelayMs: 1000,
    slowRequestMs: 1000,
    logLevel: 'info',
  } satisfies Config)
})

t.test('reads only the environment it is given, not process.env', async (t) => {
  const saved = process.env.PORT
  process.env.PORT = '1'
  t.teardown(() => (saved === undefined ? delete process.env.PORT : (process.env.PORT = saved)))
  t.equal(loadConfig({}).port, 8080)
})

t.test('every setting from its environment variable', async (t) => {
  t.strictSame([...keys].sort(), Object.keys(other).sort(), 'the table above covers every option')
  for (const key of keys) {
    const [text, value] = other[key]
    t.not(text, OPTIONS[key].default, `${key}: the test value differs from the default`)
    const config = loadConfig({ [OPTIONS[key].env]: text })
    t.strictSame(config[key], value, `${OPTIONS[key].env}=${text}`)
    // Nothing else moved but what is derived from it when 'auto'.
    const rest = keys.filter((k) => k !== key && !(DERIVED[key] ?? []).includes(k))
    t.strictSame(pick(config, rest), pick(loadConfig(), rest), `${OPTIONS[key].env} changes only ${key}`)
  }
})

t.test('every setting from its flag, in both spellings; a flag wins over the variable', async (t) => {
  for (const key of keys) {
    const { env, flag } = OPTIONS[key]
    const [text, value] = other[key]
    t.strictSame(loadConfig({}, [`--${flag}`, text])[key], value, `--${flag} ${text}`)
    t.strictSame(loadConfig({}, [`--${flag}=${text}`])[key], value, `--${flag}=${text}`)
    t.strictSame(loadConfig({ [env]: OPTIONS[key].default }, [`--${flag}`, text])[key], value, `--${flag} over ${env}`)
  }
})

t.test('values: integers trimmed, booleans in two spellings, lists split and trimmed', async (t) => {
  t.equal(loadConfig({ MHE_MAX_BATCH: ' 12 ' }).maxBatch, 12)
  for (const [text, value] of [['true', true], ['1', true], [' false ', false], ['0', false]] as const) {
    t.equal(loadConfig({ MHE_ENGINE_THREAD: text }).engineThread, value, `MHE_ENGINE_THREAD=${JSON.stringify(text)}`)
  }
  t.strictSame(loadConfig({ MHE_API_KEYS: ' a , b,,c ,' }).apiKeys, ['a', 'b', 'c'])
  t.strictSame(loadConfig({ MHE_API_KEYS: ' , ' }).apiKeys, [], 'only separators: no keys')
  t.equal(loadConfig({ PORT: '0' }).port, 0, 'port 0: any free port')
  t.equal(loadConfig({ PORT: '65535' }).port, 65535)
  t.equal(loadConfig({ MHE_MAX_QUEUE: '8', MHE_MAX_BATCH: '8' }).maxQueue, 8, 'a queue as long as one batch')
})

t.test('each integer setting: below its minimum, fractional, not a number, empty', async (t) => {
  for (const key of keys) {
    const o: { env: string; flag: string; kind: string; min?: number; auto?: boolean } = OPTIONS[key]
    if (o.kind !== 'int') continue
    const min = o.min ?? 0
    // The batching settings also take 'auto' (test/config-batching.test.ts), and their message says so.
    const expected = `an integer >= ${min}${o.auto === true ? ' or auto' : ''}`
    for (const bad of [String(min - 1), '1.5', 'ten', '', '9007199254740993']) {
      t.equal(message({ [o.env]: bad }), `${o.env} must be ${expected}, got ${JSON.stringify(bad)}`, `${o.env}=${JSON.stringify(bad)}`)
    }
    t.equal(message({}, [`--${o.flag}`, 'x']), `--${o.flag} must be ${expected}, got "x"`, 'a flag is named as the flag')
  }
})

t.test('each boolean setting: anything but true, false, 1, 0', async (t) => {
  for (const key of keys) {
    const o: { env: string; flag: string; kind: string } = OPTIONS[key]
    if (o.kind !== 'bool') continue
    for (const bad of ['yes', 'TRUE', '', '2']) {
      t.equal(message({ [o.env]: bad }), `${o.env} must be true or false, got ${JSON.stringify(bad)}`, `${o.env}=${JSON.stringify(bad)}`)
    }
    t.equal(message({}, [`--${o.flag}`, 'on']), `--${o.flag} must be true or false, got "on"`)
  }
})

t.test('the checks across values', async (t) => {
  t.equal(message({ MHE_BACKEND: 'quantum' }), 'MHE_BACKEND must be one of auto, tensorflow, webgpu, wasm, cpu, got "quantum"')
  t.equal(message({ LOG_LEVEL: 'loud' }), 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"')
  t.equal(message({ PORT: '65536' }), 'PORT must be at most 65535, got 65536')
  t.equal(message({ MHE_MAX_QUEUE: '100', MHE_MAX_BATCH: '256' }), 'MHE_MAX_QUEUE (100) must be at least MHE_MAX_BATCH (256)')
  t.equal(loadConfig({ MHE_MAX_QUEUE: '100' }, ['--max-batch', '50']).maxQueue, 100, 'checked after the flags apply')
  t.equal(message({ MHE_MAX_INFLIGHT_BYTES: '2048', MHE_BODY_LIMIT: '4096' }), 'MHE_MAX_INFLIGHT_BYTES (2048) must be at least MHE_BODY_LIMIT (4096)')
})

t.test('derived limits: the time a request may take to arrive, bytes in flight, socket deadlines, memory', async (t) => {
  const c = loadConfig({ MHE_REQUEST_TIMEOUT_MS: '2000', MHE_BODY_LIMIT: String(4 * 1024 * 1024) })
  t.equal(c.bodyTimeoutMs, 2000 + 4000, '1 s per MiB on top of the request timeout')
  t.equal(c.maxInflightBytes, 16 * 1024 * 1024, '4 bodies at the limit')
  t.equal(loadConfig({ MHE_BODY_TIMEOUT_MS: '700' }).bodyTimeoutMs, 700, 'an explicit value wins')
  t.strictSame(socketTimeouts({ requestTimeoutMs: 2000, bodyTimeoutMs: 6000 }), { headersMs: 2000, requestMs: 6000, idleMs: 8000 })
  t.strictSame(socketTimeouts({ requestTimeoutMs: 2000, bodyTimeoutMs: 500 }).headersMs, 500, 'headers never get longer than the whole request')
  const budget = memoryBudgetBytes(c, { weightBytes: 10, featureDim: 8 })
  t.equal(budget - memoryBudgetBytes({ ...c, inlineBatch: 0 }, { weightBytes: 10, featureDim: 8 }), INLINE_ENGINE_RSS_BYTES + 10, 'MHE_INLINE_BATCH: tfjs and the weights once more')
  t.equal(memoryBudgetBytes({ ...c, inlineBatch: 0 }, { weightBytes: 10, featureDim: 8 }), BASE_RSS_BYTES + 20 + JSON_BODY_RSS_FACTOR * 16 * 1024 * 1024 + JSON_THREAD_RSS_BYTES + JSON_BODY_RSS_FACTOR * 4 * 1024 * 1024 + 4096 * 8 * 4)
})

t.test('bad command lines', async (t) => {
  t.match(message({}, ['--no-such-flag', '1']), /Unknown option '--no-such-flag'/)
  t.match(message({}, ['--port']), /Option '--port <value>' argument missing/)
  t.match(message({}, ['serve']), /Unexpected argument 'serve'/)
})

function pick(c: Config, ks: Key[]): Partial<Config> {
  return Object.fromEntries(ks.map((k) => [k, c[k]]))
}
