// A request body read into one buffer of its declared length, chunk by chunk as it arrives. Fastify's own reader keeps
// the chunks and concatenates them at the end: for a 10 MB body one copy of 10 MB in a single event-loop turn (~50 ms
// held on a 2-core machine, bench/README.md "hostile"). Here each turn copies one socket read, and the buffer owns its
// memory, so the JSON thread takes it over without another copy (src/http/json-thread.ts).

import type { Readable } from 'node:stream'
import { errors } from '../errors.js'

type Done = (err: Error | null, body?: Buffer) => void

/**
 * A chunk up to this size that is the whole body is used in place: one socket read is at most 64 KiB. A larger one
 * comes from an in-process caller (Fastify's inject), whose buffer the JSON thread must not take over (transfer).
 */
const IN_PLACE_MAX = 64 * 1024

/**
 * Reads `payload` whole. `declared` is the Content-Length (NaN for a chunked body, read as chunks then joined once);
 * more than `limit` bytes is 413, as Fastify answers it.
 */
export function readBody(payload: Readable, declared: number, limit: number, done: Done): void {
  if (declared > limit) return done(errors.bodyTooLarge(limit))
  const known = Number.isSafeInteger(declared) && declared >= 0
  // A body that came in one socket read (the usual small one) is that read's bytes, used as they are: no allocation
  // outside the JS heap per request, which V8 answers with full collections (bench/README.md, session 8). One in
  // several reads is copied into a buffer of its own, unpooled: its ArrayBuffer is the body's alone, so it can be
  // transferred (the JSON thread copies any other before it transfers it).
  let single: Buffer | undefined
  let whole: Buffer | undefined
  const chunks: Buffer[] = []
  let received = 0
  const finish = (err: Error | null, body?: Buffer) => {
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onError)
    done(err, body)
  }
  function onData(chunk: Buffer | string): void {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (received + b.length > (known ? declared : limit)) {
      return finish(known ? errors.badRequest(`expected a body of ${declared} bytes (Content-Length), got more`) : errors.bodyTooLarge(limit))
    }
    if (!known) chunks.push(b)
    else if (received === 0 && b.length === declared && declared <= IN_PLACE_MAX) single = b
    else b.copy((whole ??= Buffer.allocUnsafeSlow(declared)), received)
    received += b.length
  }
  function onEnd(): void {
    if (known && received !== declared) return finish(errors.badRequest(`expected a body of ${declared} bytes (Content-Length), got ${received}`))
    finish(null, single ?? whole ?? Buffer.concat(chunks, received))
  }
  function onError(err: Error & { statusCode?: number }): void {
    if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400
    finish(err)
  }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onError)
  payload.resume()
}
