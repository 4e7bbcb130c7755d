// readBody on a stream fed chunk by chunk: one chunk that is the whole body is used as it is, several are joined
// into one buffer of the body's own, and a body longer or shorter than its Content-Length, or over the limit, is
// refused with the error a client is told.
import t from 'tap'
import { PassThrough } from 'node:stream'
import { readBody } from '../../src/http/read-body.js'

/** Feeds `chunks` to readBody one per turn and resolves with what it handed over. */
async function read(chunks: Buffer[], declared: number, limit = 1 << 20): Promise<{ err: (Error & { statusCode?: number; code?: string }) | null; body?: Buffer }> {
  const payload = new PassThrough()
  const result = new Promise<{ err: Error | null; body?: Buffer }>((resolve) => readBody(payload, declared, limit, (err, body) => resolve({ err, body })))
  for (const c of chunks) {
    payload.write(c)
    await new Promise((r) => setImmediate(r))
  }
  payload.end()
  return result
}

const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff))

t.test('one chunk that is the whole body: that very buffer, no copy', async (t) => {
  const chunk = bytes(3072)
  const { err, body } = await read([chunk], 3072)
  t.equal(err, null)
  t.equal(body, chunk, 'the same buffer')
})

t.test('a body larger than one socket read is copied into a buffer of its own, even in one chunk', async (t) => {
  const chunk = bytes(100 * 1024)
  const { body } = await read([chunk], chunk.length)
  t.not(body, chunk)
  t.ok(body!.equals(chunk))
  t.equal(body!.byteOffset, 0)
  t.equal(body!.buffer.byteLength, chunk.length, 'its ArrayBuffer is the body alone (the JSON thread can take it over)')
})

t.test('several chunks are joined in order, with or without a Content-Length', async (t) => {
  const whole = bytes(10_000, 7)
  const parts = [whole.subarray(0, 1), whole.subarray(1, 4096), whole.subarray(4096)]
  const known = await read(parts, whole.length)
  t.ok(known.body!.equals(whole), 'Content-Length: joined')
  t.equal(known.body!.buffer.byteLength, whole.length, 'into one buffer of its own')
  const chunked = await read(parts, NaN)
  t.ok(chunked.body!.equals(whole), 'chunked: joined')
})

t.test('more or fewer bytes than declared: 400 naming both; over the limit: 413', async (t) => {
  const more = await read([bytes(100), bytes(1)], 100)
  t.match(more.err, { statusCode: 400, message: /expected a body of 100 bytes \(Content-Length\), got more/ })
  const fewer = await read([bytes(60)], 100)
  t.match(fewer.err, { statusCode: 400, message: /expected a body of 100 bytes \(Content-Length\), got 60/ })
  const declaredTooBig = await read([], 2000, 1000)
  t.match(declaredTooBig.err, { statusCode: 413 })
  const chunkedTooBig = await read([bytes(600), bytes(600)], NaN, 1000)
  t.match(chunkedTooBig.err, { statusCode: 413 })
  const empty = await read([], 0)
  t.equal(empty.err, null)
  t.equal(empty.body!.length, 0, 'an empty body is an empty buffer')
})
