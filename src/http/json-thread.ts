// Large JSON bodies parsed off the event loop: JSON.parse of a max-size /predict body (millions of numbers) takes
// hundreds of ms, during which no probe and no other request is answered. One worker thread parses them one at a time
// and sends back packed instances (src/http/json-worker.ts); the event loop does no work per value.
// Its heap is bounded (jsonThreadHeapBytes: itself and one body of the largest size). A body whose parse would not fit
// is refused on its bytes (scanJson); one that still exhausts the heap kills the thread: that request alone
// gets 413, and the next body starts a new thread. The thread holds the body it parses (transferred) and at most one
// more of up to 1 MiB, sent as a copy so that it survives the thread: the thread does not wait for the event loop to
// hand it the next small body, and no body but the one that killed it is lost with it. The rest wait here.

import { Worker } from 'node:worker_threads'
import { errors } from '../errors.js'
import type { JsonJob, JsonResult, JsonThreadData } from './json-worker.js'
import { packedBody, type PackedRows } from './packed-rows.js'

export type Parsed = { instances: PackedRows; top_k?: number } | { unpacked: Buffer } | { tooDeep: true } | { tooBig: true }

const MIB = 1024 * 1024

interface Job {
  body: Buffer
  maxDepth: number
  resolve: (r: Parsed) => void
  reject: (err: Error) => void
}

/** Bodies on the thread at once: the one it parses and the next. */
const ON_THREAD = 2
/** The largest body sent ahead as a copy (copying 1 MiB takes well under a millisecond). */
const AHEAD_MAX_BYTES = 1024 * 1024

export class JsonThread {
  private worker: Worker | undefined
  private readonly queue: Job[] = []
  /** On the thread, in the order it answers them; only the first may have been transferred. */
  private readonly sent: Job[] = []
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
      const job = this.sent.shift()
      if (job) settle(job, r)
      this.next()
    })
    // A thread that dies takes the body it parses with it: that request fails, the next body starts a new thread.
    const fail = (err?: Error & { code?: string }) => {
      if (this.worker !== w) return
      this.worker = undefined
      const job = this.sent.shift()
      // The next body was sent as a copy: it still has its bytes here and goes to the new thread.
      this.queue.unshift(...this.sent.splice(0))
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
    while (this.sent.length < ON_THREAD && this.queue.length > 0) {
      // A large body waits for the thread instead: its copy would hold the event loop (16 MiB: ~30 ms), and its parse
      // takes far longer than the hop that hands it over.
      if (this.sent.length > 0 && this.queue[0]!.body.length > AHEAD_MAX_BYTES) return
      const job = this.queue.shift()!
      const worker = (this.worker ??= this.start())
      const { body } = job
      // The body's own memory when the thread parses it next and the Buffer owns its whole ArrayBuffer (a large body
      // does), else a copy; either is transferred, not cloned again.
      const own = this.sent.length === 0 && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
      const bytes = own ? new Uint8Array(body.buffer, 0, body.byteLength) : new Uint8Array(body)
      this.sent.push(job)
      worker.postMessage({ bytes, maxDepth: job.maxDepth } satisfies JsonJob, [bytes.buffer as ArrayBuffer])
    }
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
  else job.resolve(packedBody(r))
}
