// Large JSON bodies parsed off the event loop: JSON.parse of a max-size /predict body (millions of numbers) takes
// hundreds of ms, during which no probe and no other request is answered. One worker thread parses them one at a time
// and sends back packed instances (src/http/json-worker.ts); the event loop does no work per value.
// Its heap is bounded (jsonThreadHeapBytes: itself and one body of the largest size). A body whose parse would not fit
// is refused on its bytes (parsedHeapBytes); one that still exhausts the heap kills the thread: that request alone
// gets 413, and the next body starts a new thread. Bodies wait here, not in the thread's queue, so none is lost with it.

import { Worker } from 'node:worker_threads'
import { errors } from '../errors.js'
import type { JsonJob, JsonResult, JsonThreadData } from './json-worker.js'
import { PackedRows } from './packed-rows.js'

export type Parsed = { instances: PackedRows; top_k?: number } | { unpacked: Buffer } | { tooDeep: true } | { tooBig: true }

const MIB = 1024 * 1024

interface Job {
  body: Buffer
  maxDepth: number
  resolve: (r: Parsed) => void
  reject: (err: Error) => void
}

export class JsonThread {
  private worker: Worker | undefined
  private readonly queue: Job[] = []
  private current: Job | undefined
  private readonly heapMb: number

  /** `heapBytes`: the thread's heap limit; `parseBudgetBytes`: the most a parse may take of it (estimated). */
  constructor(
    heapBytes: number,
    private readonly parseBudgetBytes: number,
  ) {
    this.heapMb = Math.ceil(heapBytes / MIB)
  }

  private start(): Worker {
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const w = new Worker(new URL(`./json-worker.${ext}`, import.meta.url), {
      workerData: { parseBudgetBytes: this.parseBudgetBytes } satisfies JsonThreadData,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
    })
    w.unref()
    w.on('message', (r: JsonResult) => {
      const job = this.current
      this.current = undefined
      if (job) settle(job, r)
      this.next()
    })
    // A thread that dies takes the body it parses with it: that request fails, the next body starts a new thread.
    const fail = (err?: Error & { code?: string }) => {
      if (this.worker !== w) return
      this.worker = undefined
      const job = this.current
      this.current = undefined
      if (job) {
        // Out of heap: the body parses to more than the limit allows (the estimate missed it); else a fault of ours.
        if (err?.code === 'ERR_WORKER_OUT_OF_MEMORY') job.reject(errors.jsonTooBig(this.heapMb))
        else job.reject(new Error('the JSON thread stopped')) // answered 500
      }
      this.next()
    }
    w.on('error', fail)
    w.on('exit', () => fail())
    return w
  }

  private next(): void {
    if (this.current !== undefined) return
    const job = this.queue.shift()
    if (!job) return
    this.current = job
    const worker = (this.worker ??= this.start())
    const { body } = job
    // Transferred, not copied, when the Buffer owns its whole ArrayBuffer (a large body does); the copy otherwise.
    const owns = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
    const bytes = owns ? new Uint8Array(body.buffer, 0, body.byteLength) : new Uint8Array(body)
    worker.postMessage({ bytes, maxDepth: job.maxDepth } satisfies JsonJob, owns ? [bytes.buffer as ArrayBuffer] : [])
  }

  /** Parses `body` on the thread: packed instances, or the bytes back when the event loop must parse them. */
  parse(body: Buffer, maxDepth: number): Promise<Parsed> {
    return new Promise<Parsed>((resolve, reject) => {
      this.queue.push({ body, maxDepth, resolve, reject })
      this.next()
    })
  }

  async close(): Promise<void> {
    const w = this.worker
    this.worker = undefined
    if (w) await w.terminate()
  }
}

function settle(job: Job, r: JsonResult): void {
  if ('tooDeep' in r) job.resolve({ tooDeep: true })
  else if ('tooBig' in r) job.resolve({ tooBig: true })
  else if ('unpacked' in r) job.resolve({ unpacked: Buffer.from(r.unpacked.buffer, r.unpacked.byteOffset, r.unpacked.byteLength) })
  else {
    const instances = new PackedRows(r.values, r.lengths, r.nonFinite)
    job.resolve(r.topK === undefined ? { instances } : { instances, top_k: r.topK })
  }
}
