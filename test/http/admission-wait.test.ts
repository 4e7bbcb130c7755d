// The admission wait (MHE_ADMISSION_WAIT_MS, src/http/plugins/admission.ts) on real sockets: a request that finds the
// queue full waits with its body unread, is let in first come first admitted when room comes free, gets its 503 +
// Retry-After + Connection: close once the wait is over, and leaves the line when its client goes.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { testApp, testBundle } from '../helpers/server.js'

const d = 4
const bundle = await testBundle(t, { featureDim: d, heads: [3, 3], numLabels: 9, seed: 5, outputs: 'concat' })
const WAIT_MS = 600
const app = await testApp(t, bundle, { MHE_MAX_QUEUE: '4', MHE_ADMISSION_WAIT_MS: String(WAIT_MS) })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as { port: number }).port

const body = (n: number) => Buffer.from(new Float32Array(n * d).fill(0.5).buffer)
const head = (n: number) => `POST /predict/binary HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${body(n).length}\r\n\r\n`

/** A connection that collects what the server sends. */
async function open(): Promise<{ socket: Socket; text: () => string }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let text = ''
  socket.on('data', (b: Buffer) => (text += b.toString('latin1')))
  t.teardown(() => socket.destroy())
  return { socket, text: () => text }
}

async function until(f: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const answered = (c: { text: () => string }) => /\r\n\r\n\{.*\}$/s.test(c.text())
const batcher = () => app.mhe.loaded!.batcher

/** A request that holds the whole queue: it sends its headers and holds its body back. */
async function holdQueue(): Promise<{ socket: Socket; text: () => string }> {
  const holder = await open()
  holder.socket.write(head(4))
  await until(() => batcher().reserved === 4, 'the holder to get room')
  return holder
}

t.test('waiting requests get in, oldest first, as room comes free; none of them is refused', async (t) => {
  const holder = await holdQueue()
  const first = await open()
  first.socket.write(head(3))
  await new Promise((r) => setTimeout(r, 50))
  const second = await open()
  second.socket.write(head(3))
  await new Promise((r) => setTimeout(r, 50))
  t.equal(first.text(), '', 'no answer yet: the first waits, its body unsent')
  t.equal(batcher().reserved, 4, 'nothing held for the waiting requests')

  holder.socket.write(body(4))
  await until(() => answered(holder), 'the holder\'s answer')
  await until(() => batcher().reserved === 3, 'room for the first waiter')
  t.equal(second.text(), '', 'the second still waits: only one of 3 instances fits after the first')
  first.socket.write(body(3))
  await until(() => answered(first), 'the first waiter\'s answer')
  t.match(first.text(), /^HTTP\/1\.1 200 /, 'the first waiter is answered')
  await until(() => batcher().reserved === 3, 'room for the second waiter')
  second.socket.write(body(3))
  await until(() => answered(second), 'the second waiter\'s answer')
  t.match(second.text(), /^HTTP\/1\.1 200 /, 'then the second')
  await until(() => batcher().reserved === 0, 'all room given back')
})

t.test('a request still without room when the wait is over: 503 + Retry-After + Connection: close, body unread', async (t) => {
  const holder = await holdQueue()
  const refused = await open()
  const started = Date.now()
  refused.socket.write(head(1))
  await until(() => refused.text().length > 0, 'the refusal')
  const waited = Date.now() - started
  t.ok(waited >= WAIT_MS - 50, `answered after the wait (${waited} ms)`)
  t.match(refused.text(), /^HTTP\/1\.1 503 /)
  t.match(refused.text(), /\r\nretry-after: \d+\r\n/i)
  t.match(refused.text(), /\r\nconnection: close\r\n/i)
  t.match(refused.text(), /"code":"MHE_QUEUE_FULL"/)
  holder.socket.write(body(4))
  await until(() => answered(holder), 'the holder\'s answer')
  await until(() => batcher().reserved === 0, 'all room given back')
})

t.test('a waiting client that leaves is dropped from the line; the next one gets its room', async (t) => {
  const holder = await holdQueue()
  const gone = await open()
  gone.socket.write(head(2))
  await new Promise((r) => setTimeout(r, 50))
  const next = await open()
  next.socket.write(head(2))
  await new Promise((r) => setTimeout(r, 50))
  gone.socket.destroy()
  holder.socket.write(body(4))
  await until(() => answered(holder), 'the holder\'s answer')
  await until(() => batcher().reserved === 2, 'room for the next waiter, not for the one that left')
  next.socket.write(body(2))
  await until(() => answered(next), 'the next waiter\'s answer')
  t.match(next.text(), /^HTTP\/1\.1 200 /)
  await until(() => batcher().reserved === 0, 'all room given back')
})
