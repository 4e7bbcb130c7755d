// Why the batcher refused or failed a request: one class each, so callers map them (src/http/routes/predict.ts).

export class QueueFullError extends Error {
  override name = 'QueueFullError'
}
export class BatcherClosedError extends Error {
  override name = 'BatcherClosedError'
}
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError'
}
export class CancelledError extends Error {
  override name = 'CancelledError'
}
/** The run function threw, rejected or returned the wrong number of outputs; `cause` keeps what it threw. */
export class BatchFailedError extends Error {
  override name = 'BatchFailedError'
}
