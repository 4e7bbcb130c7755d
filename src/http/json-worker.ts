// The JSON thread (src/http/json-thread.ts): parses a large /predict body and, when it has the request's shape
// ({"instances": [[numbers...]...], "top_k": positive integer}), packs the instances into float32 arrays that are
// transferred back without a copy, with the first value that is not a finite float32: the event loop then has no
// per-value work left (the conversion and the check of 4 M values held it ~130 ms, bench/README.md "hostile"). Anything else goes back unparsed, for the event loop to parse and describe
// exactly as it does small bodies.

import { parentPort, workerData } from 'node:worker_threads'
import { scanJson } from './json-depth.js'
import { INSTANCES_DEPTH, scanInstances } from './scan-instances.js'
import { pack, type Packed } from './packed-rows.js'

export interface JsonThreadData {
  /** A body whose parse would take more heap than this (scanJson) is refused unparsed. */
  parseBudgetBytes: number
}

export interface JsonJob {
  bytes: Uint8Array
  /** Deeper nesting is refused before parsing (src/http/json-depth.ts). */
  maxDepth: number
}

export type JsonResult = Packed | { unpacked: Uint8Array } | { tooDeep: true } | { tooBig: true }

const { parseBudgetBytes } = workerData as JsonThreadData

parentPort!.on('message', ({ bytes, maxDepth }: JsonJob) => {
  // The usual shape needs no depth or heap check: it takes 4 bytes per value and makes no JS objects.
  const usual = maxDepth >= INSTANCES_DEPTH ? scanInstances(bytes) : undefined
  if (usual !== undefined) return parentPort!.postMessage(usual satisfies JsonResult, [usual.values.buffer as ArrayBuffer, usual.lengths.buffer as ArrayBuffer])
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
