// The JSON thread (src/http/json-thread.ts): parses a large /predict body and, when it has the request's shape
// ({"instances": [[numbers...]...], "top_k": positive integer}), packs the instances into float32 arrays that are
// transferred back without a copy, with the first value that is not a finite float32: the event loop then has no
// per-value work left (the conversion and the check of 4 M values held it ~130 ms, bench/README.md "hostile"). Anything else goes back unparsed, for the event loop to parse and describe
// exactly as it does small bodies.

import { parentPort, workerData } from 'node:worker_threads'
import { scanJson } from './json-depth.js'

export interface JsonThreadData {
  /** A body whose parse would take more heap than this (scanJson) is refused unparsed. */
  parseBudgetBytes: number
}

export interface JsonJob {
  bytes: Uint8Array
  /** Deeper nesting is refused before parsing (src/http/json-depth.ts). */
  maxDepth: number
}

/** Where the first value that is not a finite float32 is, in the packed values, and what was sent there. */
export interface NonFinite {
  at: number
  sent: number
}

interface Packed {
  values: Float32Array
  lengths: Int32Array
  topK: number | undefined
  nonFinite: NonFinite | undefined
}

export type JsonResult = Packed | { unpacked: Uint8Array } | { tooDeep: true } | { tooBig: true }

/** The packed instances of `v`, or undefined when it is not exactly the request's shape. */
function pack(v: unknown): Packed | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  for (const key of Object.keys(v)) if (key !== 'instances' && key !== 'top_k') return undefined
  const { instances, top_k: topK } = v as { instances?: unknown; top_k?: unknown }
  if (topK !== undefined && !(Number.isInteger(topK) && (topK as number) >= 1)) return undefined
  if (!Array.isArray(instances)) return undefined
  const lengths = new Int32Array(instances.length)
  let total = 0
  for (let i = 0; i < instances.length; i++) {
    const row: unknown = instances[i]
    if (!Array.isArray(row)) return undefined
    lengths[i] = row.length
    total += row.length
  }
  const values = new Float32Array(total)
  let nonFinite: NonFinite | undefined
  let at = 0
  for (const row of instances as unknown[][]) {
    for (const x of row) {
      if (typeof x !== 'number') return undefined
      values[at] = x
      // A finite float64 can still overflow float32 (1e39): checked after the conversion.
      if (nonFinite === undefined && !Number.isFinite(values[at]!)) nonFinite = { at, sent: x }
      at++
    }
  }
  return { values, lengths, topK: topK as number | undefined, nonFinite }
}

const { parseBudgetBytes } = workerData as JsonThreadData

parentPort!.on('message', ({ bytes, maxDepth }: JsonJob) => {
  // Depth and heap estimate in one pass over the bytes (two passes cost about as much as the parse itself).
  const scan = scanJson(bytes, maxDepth)
  if ('tooDeep' in scan) return parentPort!.postMessage(scan satisfies JsonResult)
  if (scan.heapBytes > parseBudgetBytes) return parentPort!.postMessage({ tooBig: true } satisfies JsonResult)
  let packed: ReturnType<typeof pack>
  try {
    packed = pack(JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')))
  } catch {
    packed = undefined // malformed: the event loop parses it again for the exact message
  }
  if (packed === undefined) {
    parentPort!.postMessage({ unpacked: bytes } satisfies JsonResult, [bytes.buffer as ArrayBuffer])
  } else {
    parentPort!.postMessage(packed satisfies JsonResult, [packed.values.buffer as ArrayBuffer, packed.lengths.buffer as ArrayBuffer])
  }
})
