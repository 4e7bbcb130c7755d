// Large JSON bodies parsed off the event loop: JSON.parse of a max-size /predict body (millions of numbers) takes
// hundreds of ms, during which no probe and no other request is answered. One worker thread parses them in turn and
// sends back packed instances (src/http/json-worker.ts); the event loop does no work per value.

import { Worker } from 'node:worker_threads'
import type { JsonJob, JsonResult } from './json-worker.js'
import { PackedRows } from './packed-rows.js'

export type Parsed = { instances: PackedRows; top_k?: number } | { unpacked: Buffer } | { tooDeep: true }

export class JsonThread {
  private worker: Worker | undefined
  private seq = 0
  private readonly waiting = new Map<number, (r: JsonResult | undefined) => void>()

  private start(): Worker {
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const w = new Worker(new URL(`./json-worker.${ext}`, import.meta.url))
    w.unref()
    w.on('message', (r: JsonResult) => {
      const resolve = this.waiting.get(r.id)
      this.waiting.delete(r.id)
      resolve?.(r)
    })
    // A thread that dies takes its jobs with it: they are answered as unparsed, and the next job starts a new one.
    const fail = () => {
      if (this.worker !== w) return
      this.worker = undefined
      for (const resolve of this.waiting.values()) resolve(undefined)
      this.waiting.clear()
    }
    w.on('error', fail)
    w.on('exit', fail)
    return w
  }

  /** Parses `body` on the thread: packed instances, or the bytes back when the event loop must parse them. */
  parse(body: Buffer, maxDepth: number): Promise<Parsed> {
    const worker = (this.worker ??= this.start())
    const id = this.seq++
    // Transferred, not copied, when the Buffer owns its whole ArrayBuffer (a large body does); the copy otherwise.
    const owns = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
    const bytes = owns ? new Uint8Array(body.buffer, 0, body.byteLength) : new Uint8Array(body)
    return new Promise<Parsed>((resolve, reject) => {
      this.waiting.set(id, (r) => {
        if (r === undefined) reject(new Error('the JSON thread stopped')) // the body went with it: answered 500
        else if ('tooDeep' in r) resolve({ tooDeep: true })
        else if ('unpacked' in r) resolve({ unpacked: Buffer.from(r.unpacked.buffer, r.unpacked.byteOffset, r.unpacked.byteLength) })
        else {
          const instances = new PackedRows(r.values, r.lengths, r.nonFinite)
          resolve(r.topK === undefined ? { instances } : { instances, top_k: r.topK })
        }
      })
      worker.postMessage({ id, bytes, maxDepth } satisfies JsonJob, owns ? [bytes.buffer as ArrayBuffer] : [])
    })
  }

  async close(): Promise<void> {
    const w = this.worker
    this.worker = undefined
    if (w) await w.terminate()
  }
}
