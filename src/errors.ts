// Every error the service raises, with a stable `code` and HTTP status, declared in one place.
// Messages say what was expected and what arrived; 5xx messages never carry internals.

export class ServiceError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly headers: Record<string, string>

  constructor(code: ErrorCode, statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'ServiceError'
    this.code = code
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** Every code with its meaning; ServiceError accepts only these, and a test checks each is in the README. */
export const ERROR_CODES = {
  MHE_BAD_REQUEST: 'The request body or query does not match the schema.',
  MHE_BAD_INSTANCE: 'An instance has the wrong length or a non-finite value.',
  MHE_EMPTY_BATCH: 'The request carries no instances.',
  MHE_TOO_MANY_INSTANCES: 'The request carries more instances than MHE_MAX_INSTANCES.',
  MHE_BAD_TOP_K: 'top_k is not an integer between 1 and MHE_MAX_TOP_K.',
  MHE_BAD_BINARY_BODY: 'A binary body whose length is not a multiple of 4 x featureDim.',
  MHE_UNSUPPORTED_MEDIA_TYPE: 'Content-Type is neither application/json nor application/octet-stream.',
  MHE_BODY_TOO_LARGE: 'The body is larger than the configured limit.',
  MHE_MALFORMED_JSON: 'The body is not valid JSON.',
  MHE_UNAUTHORIZED: 'A bearer token is required and was missing or wrong.',
  MHE_QUEUE_FULL: 'The batch queue is full; retry after the Retry-After delay.',
  MHE_OVERLOADED: 'The event loop lags past MHE_MAX_EVENT_LOOP_DELAY_MS; retry after the Retry-After delay.',
  MHE_SHUTTING_DOWN: 'The server is draining before it stops; retry on another replica.',
  MHE_TIMEOUT: 'The request did not finish within MHE_REQUEST_TIMEOUT_MS.',
  MHE_CLIENT_CLOSED: 'The client closed the connection before the answer; its instances were dropped.',
  MHE_NOT_READY: 'The model is not loaded or not warmed up yet.',
  MHE_INTERNAL: 'An unexpected server error; details are in the server log.',
  MHE_NOT_FOUND: 'No such route.',
  MHE_MODEL_NOT_FOUND: 'No such model or model version (Open Inference Protocol routes).',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

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

export const errors = {
  badRequest: (message: string) => new ServiceError('MHE_BAD_REQUEST', 400, message),
  badInstance: (message: string) => new ServiceError('MHE_BAD_INSTANCE', 400, message),
  emptyBatch: () => new ServiceError('MHE_EMPTY_BATCH', 400, 'expected at least one instance, got none'),
  tooManyInstances: (got: number, max: number) =>
    new ServiceError('MHE_TOO_MANY_INSTANCES', 400, `expected at most ${max} instances per request, got ${got}`),
  badTopK: (got: unknown, max: number) =>
    new ServiceError('MHE_BAD_TOP_K', 400, `top_k must be an integer from 1 to ${max}, got ${shown(got)}`),
  badBinaryBody: (bytes: number, featureDim: number) =>
    new ServiceError(
      'MHE_BAD_BINARY_BODY',
      400,
      `binary body must be float32 values, a multiple of ${4 * featureDim} bytes (featureDim ${featureDim} x 4), got ${bytes} bytes`,
    ),
  unsupportedMediaType: (got: string | undefined) =>
    new ServiceError(
      'MHE_UNSUPPORTED_MEDIA_TYPE',
      415,
      `Content-Type must be application/json or application/octet-stream, got ${got ?? 'none'}`,
    ),
  bodyTooLarge: (limit: number) =>
    new ServiceError('MHE_BODY_TOO_LARGE', 413, `body is larger than the limit of ${limit} bytes`),
  malformedJson: (detail: string) =>
    new ServiceError('MHE_MALFORMED_JSON', 400, `body is not valid JSON: ${detail}`),
  unauthorized: () =>
    new ServiceError('MHE_UNAUTHORIZED', 401, 'expected an Authorization: Bearer <token> header with a valid token', {
      'WWW-Authenticate': 'Bearer realm="mhe"',
    }),
  queueFull: (retryAfterSeconds: number) =>
    new ServiceError('MHE_QUEUE_FULL', 503, 'the batch queue is full, retry later', {
      'Retry-After': String(retryAfterSeconds),
    }),
  overloaded: (what: string) =>
    new ServiceError('MHE_OVERLOADED', 503, `the server is overloaded (${what}), retry later`, { 'Retry-After': '1' }),
  shuttingDown: (retryAfterSeconds: number) =>
    new ServiceError('MHE_SHUTTING_DOWN', 503, 'the server is shutting down, retry on another replica', {
      'Retry-After': String(retryAfterSeconds),
    }),
  timeout: (ms: number) => new ServiceError('MHE_TIMEOUT', 503, `the request did not finish within ${ms} ms`, {
    'Retry-After': '1',
  }),
  clientClosed: () => new ServiceError('MHE_CLIENT_CLOSED', 499, 'the client closed the connection'),
  notReady: () => new ServiceError('MHE_NOT_READY', 503, 'the model is not ready yet', { 'Retry-After': '1' }),
  engineFailed: () =>
    new ServiceError('MHE_NOT_READY', 503, 'the inference engine of this process stopped; retry on another replica', { 'Retry-After': '1' }),
  modelNotFound: (message: string) => new ServiceError('MHE_MODEL_NOT_FOUND', 404, message),
  internal: () => new ServiceError('MHE_INTERNAL', 500, 'internal error, see the server log'),
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
