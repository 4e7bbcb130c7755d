// One-instance feature buffers, recycled per featureDim for the whole thread: the routes copy a one-instance body into
// one, the JSON scanner reads one into one, and the batch gives it back once it has copied it (load.ts). A typed array
// of a few KB per request is memory outside the JS heap that waits for a full collection.

import { FloatPool } from '../engine/float-pool.js'

/** Upper bound on the memory kept in recycled one-instance feature buffers, per length. */
const INSTANCE_POOL_BYTES = 8 * 1024 * 1024
const instancePools = new Map<number, FloatPool>()

/**
 * This thread's pool of one-instance feature buffers of `length` (featureDim) floats, made on first use: shared by
 * every version of that featureDim (load.ts) and by the JSON scanner, which reads a one-instance body into one of them.
 */
export function instancePool(length: number): FloatPool {
  let pool = instancePools.get(length)
  if (pool === undefined) {
    pool = new FloatPool(length, Math.max(16, Math.floor(INSTANCE_POOL_BYTES / (4 * length))))
    instancePools.set(length, pool)
  }
  return pool
}

/** The pool of that length if a model made it; none for a length no model has (a client's body decides it). */
export const existingInstancePool = (length: number): FloatPool | undefined => instancePools.get(length)
