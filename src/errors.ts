// Every error the service raises, with a stable `code` and HTTP status, declared in one place.
// Messages say what was expected and what arrived; 5xx messages never carry internals.

/** Seconds a client waits before retrying a refusal that says Retry-After (every 503 of this service). */
export const RETRY_AFTER_SECONDS = 1

interface ErrorSpec {
  /** The HTTP status of every answer with this code. */
  status: number
  /** The answer carries Retry-After: RETRY_AFTER_SECONDS. */
  retry?: true
  /** Further headers of every answer with this code. */
  headers?: Record<string, string>
}

/**
 * Every code once, with its status and headers: call sites name a code and a message, never a status. The README's
 * Errors table says what each means; test/errors.test.ts checks the two agree.
 */
export const ERROR_CODES = {
  MHE_BAD_REQUEST: { status: 400 },
  MHE_BAD_INSTANCE: { status: 400 },
  MHE_EMPTY_BATCH: { status: 400 },
  MHE_TOO_MANY_INSTANCES: { status: 400 },
  MHE_BAD_TOP_K: { status: 400 },
  MHE_BAD_BINARY_BODY: { status: 400 },
  MHE_MALFORMED_JSON: { status: 400 },
  MHE_UNAUTHORIZED: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="mhe"' } },
  MHE_BAD_HTTP: { status: 400 },
  MHE_JSON_TOO_DEEP: { status: 400 },
  MHE_FORBIDDEN: { status: 403 },
  MHE_NOT_FOUND: { status: 404 },
  MHE_MODEL_NOT_FOUND: { status: 404 },
  MHE_METHOD_NOT_ALLOWED: { status: 405 },
  MHE_REQUEST_TIMEOUT: { status: 408 },
  MHE_BODY_TOO_LARGE: { status: 413 },
  MHE_JSON_TOO_BIG: { status: 413 },
  MHE_UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  MHE_MODEL_LOAD_FAILED: { status: 422 },
  MHE_HEADERS_TOO_LARGE: { status: 431 },
  MHE_CLIENT_CLOSED: { status: 499 },
  MHE_INTERNAL: { status: 500 },
  MHE_QUEUE_FULL: { status: 503, retry: true },
  MHE_OVERLOADED: { status: 503, retry: true },
  MHE_SHUTTING_DOWN: { status: 503, retry: true },
  MHE_TIMEOUT: { status: 503, retry: true },
  MHE_NOT_READY: { status: 503, retry: true },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERROR_CODES

/** The headers of each code, built once (Retry-After included where the code retries). */
const HEADERS = Object.fromEntries(
  Object.entries(ERROR_CODES).map(([code, spec]: [string, ErrorSpec]) => [
    code,
    Object.freeze({ ...spec.headers, ...(spec.retry ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {}) }),
  ]),
) as Record<ErrorCode, Readonly<Record<string, string>>>

/** An error the service answers with: a stable code, its status and headers from ERROR_CODES, and a message. */
export class ServiceError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>

  constructor(code: ErrorCode, message: string) {
    super(message)
    this.name = 'ServiceError'
    this.code = code
    this.statusCode = ERROR_CODES[code].status
    this.headers = HEADERS[code]
  }
}

/** A client's value for a message: JSON cut to 80 characters; one too deeply nested to print is named by its type. */
function shown(v: unknown): string {
  let s: string
  try {
    s = typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v)) // Infinity, not "null"
  } catch {
    s = Array.isArray(v) ? '(a deeply nested array)' : `(a deeply nested ${typeof v})`
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

/** The messages: what was expected and what arrived. 5xx messages never carry internals. */
export const errors = {
  badRequest: (message: string) => new ServiceError('MHE_BAD_REQUEST', message),
  unknownField: (where: string, name: string, at = '') =>
    new ServiceError(
      'MHE_BAD_REQUEST',
      `unknown ${where === 'querystring' ? 'query parameter' : `${where} field`} ${shown(name)}${at ? ` at ${at}` : ''}; expected only the documented ones`,
    ),
  badInstance: (message: string) => new ServiceError('MHE_BAD_INSTANCE', message),
  emptyBatch: () => new ServiceError('MHE_EMPTY_BATCH', 'expected at least one instance, got none'),
  tooManyInstances: (got: number, max: number) =>
    new ServiceError('MHE_TOO_MANY_INSTANCES', `expected at most ${max} instances per request, got ${got}`),
  badTopK: (got: unknown, max: number) => new ServiceError('MHE_BAD_TOP_K', `top_k must be an integer from 1 to ${max}, got ${shown(got)}`),
  badBinaryBody: (bytes: number, featureDim: number) =>
    new ServiceError(
      'MHE_BAD_BINARY_BODY',
      `binary body must be float32 values, a multiple of ${4 * featureDim} bytes (featureDim ${featureDim} x 4), got ${bytes} bytes`,
    ),
  unsupportedMediaType: (got: string | undefined, expected = 'application/json or application/octet-stream') =>
    new ServiceError('MHE_UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${expected}, got ${got ?? 'none'}`),
  bodyTooLarge: (limit: number) => new ServiceError('MHE_BODY_TOO_LARGE', `body is larger than the limit of ${limit} bytes`),
  malformedJson: (detail: string) => new ServiceError('MHE_MALFORMED_JSON', `body is not valid JSON: ${detail}`),
  unauthorized: () => new ServiceError('MHE_UNAUTHORIZED', 'expected an Authorization: Bearer <token> header with a valid token'),
  badHttp: (parserCode: string) => new ServiceError('MHE_BAD_HTTP', `expected an HTTP/1.1 request, got one the HTTP parser refused (${parserCode})`),
  jsonTooDeep: (max: number) =>
    new ServiceError('MHE_JSON_TOO_DEEP', `body nests arrays and objects deeper than the ${max} levels the request shape has ({"instances": [[...]]})`),
  jsonTooBig: (heapMb: number) =>
    new ServiceError('MHE_JSON_TOO_BIG', `body would take more than the ${heapMb} MB the JSON parser may use (MHE_BODY_LIMIT sets it); send fewer, larger values, or the float32 binary form`),
  forbidden: (path: string) => new ServiceError('MHE_FORBIDDEN', `${path} is not a file that is served`),
  methodNotAllowed: (method: string, path: string, allowed: readonly string[]) =>
    new ServiceError('MHE_METHOD_NOT_ALLOWED', `${path} takes ${allowed.join(', ')}, not ${method}`),
  requestTimeout: (ms: number) => new ServiceError('MHE_REQUEST_TIMEOUT', `the request did not arrive in full within ${ms} ms (MHE_BODY_TIMEOUT_MS)`),
  headersTooLarge: () => new ServiceError('MHE_HEADERS_TOO_LARGE', 'the request line and headers are larger than the server takes (16 KiB)'),
  notFound: (method: string, path: string) => new ServiceError('MHE_NOT_FOUND', `no route ${method} ${path}`),
  modelNotFound: (message: string) => new ServiceError('MHE_MODEL_NOT_FOUND', message),
  queueFull: () => new ServiceError('MHE_QUEUE_FULL', 'the batch queue is full, retry later'),
  overloaded: (what: string) => new ServiceError('MHE_OVERLOADED', `the server is overloaded (${what}), retry later`),
  shuttingDown: () => new ServiceError('MHE_SHUTTING_DOWN', 'the server is shutting down, retry on another replica'),
  timeout: (ms: number) => new ServiceError('MHE_TIMEOUT', `the request did not finish within ${ms} ms`),
  clientClosed: () => new ServiceError('MHE_CLIENT_CLOSED', 'the client closed the connection'),
  notReady: (message = 'the model is not ready yet') => new ServiceError('MHE_NOT_READY', message),
  loadFailed: (message: string) => new ServiceError('MHE_MODEL_LOAD_FAILED', message),
  engineFailed: () => new ServiceError('MHE_NOT_READY', 'the inference engine of this process stopped; retry on another replica'),
  internal: () => new ServiceError('MHE_INTERNAL', 'internal error, see the server log'),
}

/** A bundle that cannot be served; raised at start-up, naming the file and the mismatch. */
export class BundleError extends Error {
  readonly file: string
  /** The message without the file name. */
  readonly detail: string
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`)
    this.name = 'BundleError'
    this.file = file
    this.detail = detail
  }
}
