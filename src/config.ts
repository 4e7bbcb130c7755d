// Configuration: environment variables (MHE_*, PORT, HOST, LOG_LEVEL) and the same as CLI flags, validated in one
// place. Nothing else in the service reads process.env.

import { parseArgs } from 'node:util'

/** The tfjs backends one may ask for (MHE_BACKEND); src/engine/backend.ts says how each is tried. */
export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const
export type BackendRequest = (typeof BACKENDS)[number]
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Config {
  port: number
  host: string
  modelDir: string
  /** '' = one bundle (modelDir); else DIR/<name>/<version>/ (src/bundle/repository.ts). */
  modelRepository: string
  /** The model /predict serves in a repository; '' = the only one. */
  defaultModel: string
  /** Seconds between repository scans; 0 = never. */
  repositoryPollS: number
  adminKeys: string[]
  backend: BackendRequest
  /** 'auto': by backend, see batchingFor. */
  maxBatch: number | 'auto'
  maxDelayMs: number | 'auto'
  admissionWaitMs: number
  maxQueue: number
  maxInstances: number
  maxTopK: number
  requestTimeoutMs: number
  bodyLimit: number
  /** 'auto' in OPTIONS: resolved by loadConfig (bodyTimeoutFor). */
  bodyTimeoutMs: number
  maxConnections: number
  /** 'auto' in OPTIONS: resolved by loadConfig (4 x bodyLimit). */
  maxInflightBytes: number
  apiKeys: string[]
  shutdownGraceMs: number
  drainDelayMs: number
  keepAliveTimeoutMs: number
  workers: number
  engineThread: boolean
  inlineBatch: number
  nativeDense: boolean
  metricsAuth: boolean
  maxEventLoopDelayMs: number
  slowRequestMs: number
  logLevel: LogLevel
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** Returns `name` as a backend request, or throws the one message that lists the backends. */
export function checkBackend(name: string): BackendRequest {
  const known = BACKENDS.find((b) => b === name)
  if (known === undefined) throw new ConfigError(`MHE_BACKEND must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(name)}`)
  return known
}

interface Option {
  env: string
  flag: string
  kind: 'int' | 'string' | 'list' | 'bool'
  min?: number
  /** An int that may also be 'auto' (chosen once the backend is known). */
  auto?: boolean
  default: string
  help: string
}

/** Every setting once: its variable, its flag, its default and what it means (the README table is built from this). */
export const OPTIONS = {
  port: { env: 'PORT', flag: 'port', kind: 'int', min: 0, default: '8080', help: 'TCP port to listen on (0 = any free port)' },
  host: { env: 'HOST', flag: 'host', kind: 'string', default: '127.0.0.1', help: 'address to listen on (the container sets 0.0.0.0)' },
  modelDir: { env: 'MHE_MODEL', flag: 'model', kind: 'string', default: 'models/demo', help: 'model bundle folder to serve' },
  modelRepository: { env: 'MHE_MODEL_REPOSITORY', flag: 'model-repository', kind: 'string', default: '', help: 'folder of models and versions, DIR/<name>/<version>/ (README "Model repository"); set, it replaces MHE_MODEL' },
  defaultModel: { env: 'MHE_DEFAULT_MODEL', flag: 'default-model', kind: 'string', default: '', help: 'the repository model /predict and /model serve (empty = the only one)' },
  repositoryPollS: { env: 'MHE_REPOSITORY_POLL_S', flag: 'repository-poll-s', kind: 'int', min: 0, default: '0', help: 'seconds between scans of MHE_MODEL_REPOSITORY for new, changed or removed versions (0 = off)' },
  adminKeys: { env: 'MHE_ADMIN_KEYS', flag: 'admin-keys', kind: 'list', default: '', help: 'comma-separated bearer tokens of the repository control endpoints /v2/repository/* (empty = those endpoints are off)' },
  backend: { env: 'MHE_BACKEND', flag: 'backend', kind: 'string', default: 'auto', help: `${BACKENDS.slice(0, -1).join(', ')} or ${BACKENDS.at(-1)}` },
  maxBatch: { env: 'MHE_MAX_BATCH', flag: 'max-batch', kind: 'int', min: 1, auto: true, default: 'auto', help: 'most instances in one model call; auto = 256 on CPU backends, 1024 on GPU backends (tensorflow-gpu, webgpu)' },
  maxDelayMs: { env: 'MHE_MAX_DELAY_MS', flag: 'max-delay-ms', kind: 'int', min: 0, auto: true, default: 'auto', help: 'longest the first queued instance waits for company (ms); 0 = one event-loop turn, so requests already received share the batch; auto = 0 on CPU backends, 1 on GPU backends' },
  admissionWaitMs: { env: 'MHE_ADMISSION_WAIT_MS', flag: 'admission-wait-ms', kind: 'int', min: 0, default: '1000', help: 'how long a request that finds the queue full waits for room, its body unread, before its 503 (0 = refuse at once); first come, first admitted; it slows down clients that retry without waiting for Retry-After' },
  maxQueue: { env: 'MHE_MAX_QUEUE', flag: 'max-queue', kind: 'int', min: 1, default: '4096', help: 'most instances waiting; past it, 503 + Retry-After' },
  maxInstances: { env: 'MHE_MAX_INSTANCES', flag: 'max-instances', kind: 'int', min: 1, default: '1024', help: 'most instances in one request' },
  maxTopK: { env: 'MHE_MAX_TOP_K', flag: 'max-top-k', kind: 'int', min: 1, default: '300', help: 'largest top_k accepted (the demo re-ranks up to 300 candidates)' },
  requestTimeoutMs: { env: 'MHE_REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms', kind: 'int', min: 1, default: '10000', help: 'deadline of a request inside the server (ms)' },
  bodyLimit: { env: 'MHE_BODY_LIMIT', flag: 'body-limit', kind: 'int', min: 1024, default: String(16 * 1024 * 1024), help: 'largest request body in bytes; past it, 413' },
  bodyTimeoutMs: { env: 'MHE_BODY_TIMEOUT_MS', flag: 'body-timeout-ms', kind: 'int', min: 1, auto: true, default: 'auto', help: 'longest a whole request (headers and body) may take to arrive (ms); past it, 408 and the connection closes; auto = MHE_REQUEST_TIMEOUT_MS + 1000 per MiB of MHE_BODY_LIMIT (a client sending at 1 MiB/s)' },
  maxConnections: { env: 'MHE_MAX_CONNECTIONS', flag: 'max-connections', kind: 'int', min: 1, default: '1024', help: 'most open TCP connections per process; past it, a new connection is closed at once, unanswered' },
  maxInflightBytes: { env: 'MHE_MAX_INFLIGHT_BYTES', flag: 'max-inflight-bytes', kind: 'int', min: 1024, auto: true, default: 'auto', help: 'most request-body bytes held at once (Content-Length; a chunked body counts as MHE_BODY_LIMIT); past it, 503 + Retry-After before the body is read; at least MHE_BODY_LIMIT; auto = 4 x MHE_BODY_LIMIT' },
  apiKeys: { env: 'MHE_API_KEYS', flag: 'api-keys', kind: 'list', default: '', help: 'comma-separated bearer tokens required on /predict (empty = open)' },
  shutdownGraceMs: { env: 'MHE_SHUTDOWN_GRACE_MS', flag: 'shutdown-grace-ms', kind: 'int', min: 0, default: '10000', help: 'how long SIGTERM waits for queued work before exiting' },
  drainDelayMs: { env: 'MHE_DRAIN_DELAY_MS', flag: 'drain-delay-ms', kind: 'int', min: 0, default: '500', help: 'after SIGTERM, keep serving (not ready, Connection: close) this long before closing the listener' },
  keepAliveTimeoutMs: { env: 'MHE_KEEP_ALIVE_TIMEOUT_MS', flag: 'keep-alive-timeout-ms', kind: 'int', min: 1, default: '5000', help: 'idle keep-alive connections close after this long (told to clients, who close first)' },
  workers: { env: 'MHE_WORKERS', flag: 'workers', kind: 'int', min: 0, default: '1', help: 'server processes sharing the port, each with its own model (0 = one per core, capped by the CPU quota)' },
  engineThread: { env: 'MHE_ENGINE_THREAD', flag: 'engine-thread', kind: 'bool', default: 'true', help: 'run the model on a worker thread beside the HTTP event loop (false = on the event loop)' },
  inlineBatch: { env: 'MHE_INLINE_BATCH', flag: 'inline-batch', kind: 'int', min: 0, default: '4', help: 'with the engine thread on wasm or cpu, batches of up to this many instances run on the event loop instead, from a second copy of the model (bundles up to 64 MiB of weights): one request alone skips two thread wake-ups (0 = none)' },
  nativeDense: { env: 'MHE_NATIVE_DENSE', flag: 'native-dense', kind: 'bool', default: 'true', help: 'on wasm, run models of Dense layers on the native kernel built at install (native/dense.cc; the wasm kernel\'s outputs, bit for bit; ~2x as fast on batches) where it was built (false = the wasm kernel)' },
  metricsAuth: { env: 'MHE_METRICS_AUTH', flag: 'metrics-auth', kind: 'bool', default: 'false', help: 'require the MHE_API_KEYS bearer token on /metrics too' },
  maxEventLoopDelayMs: { env: 'MHE_MAX_EVENT_LOOP_DELAY_MS', flag: 'max-event-loop-delay-ms', kind: 'int', min: 0, default: '1000', help: 'event-loop lag past which requests get 503 + Retry-After (0 = off)' },
  slowRequestMs: { env: 'MHE_SLOW_REQUEST_MS', flag: 'slow-request-ms', kind: 'int', min: 0, default: '1000', help: 'requests slower than this (ms) get an info access line, like errors; the others log at debug (0 = every request at info)' },
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', kind: 'string', default: 'info', help: 'pino level: fatal, error, warn, info, debug, trace, silent' },
} satisfies Record<keyof Config, Option>

/** Reads settings from CLI flags (first) and environment variables; throws ConfigError naming the bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = {}, argv: string[] = []): Config {
  const entries = Object.entries(OPTIONS) as [keyof Config, Option][]
  let flags: Record<string, string | boolean | undefined>
  try {
    flags = parseArgs({
      args: argv,
      options: Object.fromEntries(entries.map(([, o]) => [o.flag, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const out: Record<string, unknown> = {}
  for (const [key, o] of entries) {
    const fromFlag = flags[o.flag]
    const raw = typeof fromFlag === 'string' ? fromFlag : (env[o.env] ?? o.default)
    const where = typeof fromFlag === 'string' ? `--${o.flag}` : o.env
    if (o.kind === 'int' && o.auto === true && raw.trim() === 'auto') {
      out[key] = 'auto'
    } else if (o.kind === 'int') {
      const value = Number(raw.trim())
      if (raw.trim() === '' || !Number.isSafeInteger(value) || value < (o.min ?? 0)) {
        const or = o.auto === true ? ' or auto' : ''
        throw new ConfigError(`${where} must be an integer >= ${o.min ?? 0}${or}, got ${JSON.stringify(raw)}`)
      }
      out[key] = value
    } else if (o.kind === 'bool') {
      if (!['true', 'false', '1', '0'].includes(raw.trim())) throw new ConfigError(`${where} must be true or false, got ${JSON.stringify(raw)}`)
      out[key] = raw.trim() === 'true' || raw.trim() === '1'
    } else if (o.kind === 'list') {
      out[key] = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    } else {
      out[key] = raw
    }
  }
  const config = out as unknown as Config
  if ((config.bodyTimeoutMs as number | 'auto') === 'auto') config.bodyTimeoutMs = bodyTimeoutFor(config)
  if ((config.maxInflightBytes as number | 'auto') === 'auto') config.maxInflightBytes = 4 * config.bodyLimit
  checkBackend(config.backend)
  if (!(LOG_LEVELS as readonly string[]).includes(config.logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(config.logLevel)}`)
  }
  if (config.port > 65535) throw new ConfigError(`PORT must be at most 65535, got ${config.port}`)
  if (config.maxBatch !== 'auto' && config.maxQueue < config.maxBatch) {
    throw new ConfigError(`MHE_MAX_QUEUE (${config.maxQueue}) must be at least MHE_MAX_BATCH (${config.maxBatch})`)
  }
  if (config.maxInflightBytes < config.bodyLimit) {
    throw new ConfigError(`MHE_MAX_INFLIGHT_BYTES (${config.maxInflightBytes}) must be at least MHE_BODY_LIMIT (${config.bodyLimit})`)
  }
  return config
}

/** The default time a request may take to arrive: the request timeout plus 1 s per MiB of the largest body. */
export const bodyTimeoutFor = (c: Pick<Config, 'requestTimeoutMs' | 'bodyLimit'>): number =>
  c.requestTimeoutMs + Math.ceil((c.bodyLimit / (1024 * 1024)) * 1000)

/**
 * The socket deadlines derived from the settings (README "Limits"): headers must arrive within the request timeout,
 * the whole request within MHE_BODY_TIMEOUT_MS, and a socket silent both ways for longer than a request can take
 * (arrival plus the deadline inside the server) is closed.
 */
export function socketTimeouts(c: Pick<Config, 'requestTimeoutMs' | 'bodyTimeoutMs'>): { headersMs: number; requestMs: number; idleMs: number } {
  return { headersMs: Math.min(c.requestTimeoutMs, c.bodyTimeoutMs), requestMs: c.bodyTimeoutMs, idleMs: c.bodyTimeoutMs + c.requestTimeoutMs }
}

/** What one process needs besides request bodies: Node, Fastify and tfjs at rest (measured, bench/hostile.ts). */
export const BASE_RSS_BYTES = 320 * 1024 * 1024
/**
 * Bytes of memory per byte of a JSON body held: the bytes themselves, the text, the parsed numbers (JS arrays of
 * doubles) and the float32 copy, with headroom for the garbage collector (bench/hostile.ts measures it).
 */
export const JSON_BODY_RSS_FACTOR = 6

/** The JSON thread (src/http/json-thread.ts) at rest; it parses one large body at a time, at the JSON body cost. */
export const JSON_THREAD_RSS_BYTES = 32 * 1024 * 1024

/** The JSON thread's heap limit (its resourceLimits): itself at rest and one body of the largest size parsed. */
export const jsonThreadHeapBytes = (bodyLimit: number): number => JSON_THREAD_RSS_BYTES + JSON_BODY_RSS_FACTOR * bodyLimit

/** Bundles with more weights than this run every batch on the engine thread (MHE_INLINE_BATCH keeps no copy). */
export const INLINE_MAX_WEIGHT_BYTES = 64 * 1024 * 1024
/** tfjs and its wasm module on the main thread for MHE_INLINE_BATCH, besides the weights (35-64 MB measured). */
export const INLINE_ENGINE_RSS_BYTES = 64 * 1024 * 1024

/**
 * The most resident memory one server process should need (README "Memory"): the base, twice the model's weights
 * (the bundle's bytes and the backend's copy), every body the in-flight limit lets in at its parsed cost, the JSON
 * thread with the body it parses, and the queue's float32 features; with MHE_INLINE_BATCH, tfjs on the main thread
 * and a third copy of the weights.
 */
export function memoryBudgetBytes(
  c: Pick<Config, 'maxInflightBytes' | 'maxQueue' | 'bodyLimit' | 'inlineBatch'>,
  model: { weightBytes: number; featureDim: number },
): number {
  const inline = c.inlineBatch > 0 && model.weightBytes <= INLINE_MAX_WEIGHT_BYTES ? INLINE_ENGINE_RSS_BYTES + model.weightBytes : 0
  return (
    BASE_RSS_BYTES +
    inline +
    2 * model.weightBytes +
    JSON_BODY_RSS_FACTOR * c.maxInflightBytes +
    jsonThreadHeapBytes(c.bodyLimit) +
    c.maxQueue * model.featureDim * 4
  )
}

export interface Batching {
  maxBatch: number
  maxDelayMs: number
}

/**
 * The batcher's settings once the backend is known: explicit values win; 'auto' takes the backend's defaults. A CPU
 * backend's time grows with the batch, so 256 and no wait keep latency low. A GPU call costs about the same for 1 or
 * 4096 rows (issue 15: 2.0 vs 2.2 ms on an H200), so GPU backends take batches of up to 1024 and let the first
 * request wait 1 ms for company. An 'auto' batch never exceeds MHE_MAX_QUEUE.
 */
export function batchingFor(config: Pick<Config, 'maxBatch' | 'maxDelayMs' | 'maxQueue'>, gpu: boolean): Batching {
  const defaults = gpu ? { maxBatch: 1024, maxDelayMs: 1 } : { maxBatch: 256, maxDelayMs: 0 }
  return {
    maxBatch: config.maxBatch === 'auto' ? Math.min(defaults.maxBatch, config.maxQueue) : config.maxBatch,
    maxDelayMs: config.maxDelayMs === 'auto' ? defaults.maxDelayMs : config.maxDelayMs,
  }
}
