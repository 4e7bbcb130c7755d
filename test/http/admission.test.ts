// Refusal before the body (src/http/plugins/admission.ts) on a real socket: when the queue cannot take a request,
// the 503 + Retry-After comes back while the client has sent only its headers, and the connection is closed; a
// request that was admitted keeps its room and is answered; room is given back afterwards.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { testApp, testBundle } from '../helpers/server.js'

const d = 4
const bundle = await testBundle(t, { featureDim: d, heads: [3, 3], numLabels: 9, seed: 5, outputs: 'concat' })
const app = await testApp(t, bundle, { MHE_MAX_QUEUE: '4', MHE_ADMISSION_WAIT_MS: '0' })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as { port: number }).port

/** Raw float32 body of n instances. */
const body = (n: number) => Buffer.from(new Float32Array(n * d).fill(0.5).buffer)
const head = (path: string, type: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: ${type}\r\ncontent-length: ${length}\r\n\r\n`

/** A connection that collects what the server sends; `ended` resolves when the server closes it. */
async function open(): Promise<{ socket: Socket; text: () => string; ended: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let text = ''
  socket.on('data', (b: Buffer) => (text += b.toString('latin1')))
  return { socket, text: () => text, ended: once(socket, 'end') }
}

async function until(f: () => boolean): Promise<void> {
  while (!f()) await new Promise((r) => setTimeout(r, 5))
}

t.test('a request the full queue cannot take: 503 + Retry-After before its body is sent, then the connection closes', async (t) => {
  // An admitted request of 4 instances (the whole queue) sends its headers and holds its body back.
  const admitted = await open()
  admitted.socket.write(head('/predict/binary', 'application/octet-stream', body(4).length))
  await until(() => app.mhe.loaded!.batcher.reserved === 4)

  for (const [path, type, n] of [
    ['/predict/binary', 'application/octet-stream', 1],
    ['/predict', 'application/json', 2],
  ] as const) {
    const refused = await open()
    refused.socket.write(head(path, type, 64 * 1024 * n)) // headers only: the body is never sent
    await refused.ended
    const answer = refused.text()
    t.match(answer, /^HTTP\/1\.1 503 /, `${path}: 503 while the body is still unsent`)
    t.match(answer, /\r\nretry-after: \d+\r\n/i, 'with Retry-After')
    t.match(answer, /\r\nconnection: close\r\n/i, 'and Connection: close')
    t.match(answer, /"code":"MHE_QUEUE_FULL"/)
    refused.socket.destroy()
  }

  // The admitted request is not starved: it sends its body and is answered.
  admitted.socket.write(body(4))
  await until(() => /\r\n\r\n\{.*\}$/s.test(admitted.text()))
  t.match(admitted.text(), /^HTTP\/1\.1 200 /, 'the admitted request is answered')
  admitted.socket.destroy()
  t.equal(app.mhe.loaded!.batcher.reserved, 0, 'its room is given back')

  const after = await app.inject({ method: 'POST', url: '/predict', payload: { instances: [[1, 2, 3, 4]] } })
  t.equal(after.statusCode, 200, 'the next request gets in')
})

t.test('room held by a request that fails or leaves before it is queued is given back', async (t) => {
  const bad = await app.inject({ method: 'POST', url: '/predict', payload: { instances: [[1, 2]] } })
  t.equal(bad.statusCode, 400)
  const gone = await open()
  gone.socket.write(head('/predict/binary', 'application/octet-stream', body(2).length))
  await until(() => app.mhe.loaded!.batcher.reserved === 2)
  gone.socket.destroy()
  await until(() => app.mhe.loaded!.batcher.reserved === 0)
  t.equal(app.mhe.loaded!.batcher.reserved, 0)
})
