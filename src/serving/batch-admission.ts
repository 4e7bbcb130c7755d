// Admission: whether a request may join the batcher's queue. Never blocks: a request that may not is refused at once,
// with the reason, and nothing of it is queued.

import { BatcherClosedError, CancelledError, DeadlineExceededError, QueueFullError } from './batch-errors.js'

export interface AdmissionRequest {
  /** Instances in the request. */
  size: number
  aborted: boolean
  /** Absolute time on the batcher's clock. */
  deadline: number | undefined
  /** Room was held for it before its body was read (Batcher.reserve): it is queued even past maxQueue. */
  admitted?: boolean
}

export interface AdmissionState {
  closed: boolean
  /** Instances already waiting, and those held for requests whose bodies are being read. */
  queued: number
  maxQueue: number
  now: number
}

/** The error to refuse the request with, or undefined when it may be queued. */
export function refusal(req: AdmissionRequest, state: AdmissionState): Error | undefined {
  const { size, aborted, deadline, admitted } = req
  const { closed, queued, maxQueue, now } = state
  if (closed) return new BatcherClosedError('the batcher is closed and accepts no new work')
  if (aborted) return new CancelledError('the request was cancelled before it was queued')
  if (deadline !== undefined && now >= deadline) return new DeadlineExceededError('the request deadline passed before it was queued')
  if (size > maxQueue) return new QueueFullError(`a request of ${size} instances can never fit a queue of at most ${maxQueue} instances`)
  if (admitted) return undefined // an admitted request must not starve: its room was held when it arrived
  if (queued + size > maxQueue) {
    return new QueueFullError(`the queue holds ${queued} of at most ${maxQueue} instances, no room for ${size} more`)
  }
  return undefined
}
