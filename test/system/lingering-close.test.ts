// Refusals sent before the body is read close the connection, and the close lingers (src/http/lingering-close.ts): a
// client that writes its whole large body right after its headers reads the full answer, never a reset (EPIPE,
// ECONNRESET). Real server process, raw sockets.
import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { testBundle } from '../helpers/server.js'
import { startServer } from '../helpers/process.js'
import { parseAnswers } from '../helpers/raw-http.js'

const TOKEN = 'linger-token'
const BODY_LIMIT = 8 * 1024 * 1024
const bundle = await testBundle(t, { featureDim: 16, heads: [4, 4], numLabels: 16, seed: 3 })
const server = await startServer({
  MHE_MODEL: bundle.dir,
  MHE_BACKEND: 'wasm',
  MHE_API_KEYS: TOKEN,
  MHE_BODY_LIMIT: String(BODY_LIMIT),
  // A request whose Content-Length promises 8 instances fills the queue: the next one is refused with 503 at once.
  MHE_MAX_QUEUE: '8',
  MHE_BODY_TIMEOUT_MS: '60000',
})
t.teardown(() => server.child.kill('SIGKILL'))
const { hostname, port } = new URL(server.url)

interface Upload {
  socket: Socket
  received: Buffer[]
  /** The socket's errors (EPIPE, ECONNRESET: what lingering prevents). */
  errors: string[]
  closed: Promise<void>
}

/** Sends the headers, then the whole body at once without waiting for an answer, as most clients do. */
function upload(headers: string[], body: Buffer): Upload {
  const socket = connect(Number(port), hostname)
  const u: Upload = { socket, received: [], errors: [], closed: new Promise((resolve) => socket.once('close', () => resolve())) }
  socket.on('data', (b: Buffer) => u.received.push(b))
  socket.on('error', (err: Error & { code?: string }) => u.errors.push(err.code ?? err.message))
  socket.once('connect', () => {
    socket.write(`POST /predict HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`)
    socket.write(body)
  })
  return u
}

async function refused(t: Test, u: Upload, status: number, code: string | RegExp): Promise<void> {
  const timer = setTimeout(() => u.socket.destroy(new Error('no close within 30 s')), 30_000)
  await u.closed
  clearTimeout(timer)
  t.strictSame(u.errors, [], 'no reset, no broken pipe')
  const [a] = parseAnswers(Buffer.concat(u.received).toString('latin1'))
  t.equal(a?.status, status, `status ${status}`)
  t.equal(a?.headers.connection, 'close', 'Connection: close')
  const body = JSON.parse(a?.body ?? '{}') as { code?: string; message?: string }
  if (typeof code === 'string') t.equal(body.code, code, `the whole JSON body (${code})`)
  else t.match(body.code, code, `the whole JSON body (${String(code)})`)
}

const body = Buffer.alloc(BODY_LIMIT, ' ')

t.test('503 queue full: the full answer with Retry-After, then a clean close', async (t) => {
  // Holds the whole queue: its headers and a few bytes, the rest never sent.
  const holder = connect(Number(port), hostname)
  t.teardown(() => holder.destroy())
  holder.on('error', () => {})
  holder.write(`POST /predict HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${BODY_LIMIT}\r\n\r\n{`)
  await new Promise((r) => setTimeout(r, 300))
  const u = upload([`Authorization: Bearer ${TOKEN}`, `Content-Length: ${BODY_LIMIT}`], body)
  // MHE_OVERLOADED instead when the event-loop guard is on (a loaded machine): the same refusal before the body.
  await refused(t, u, 503, /^MHE_(QUEUE_FULL|OVERLOADED)$/)
  const [a] = parseAnswers(Buffer.concat(u.received).toString('latin1'))
  t.match(a?.headers['retry-after'], /^\d+$/, 'Retry-After')
})

t.test('413 from Content-Length: the full answer, then a clean close', async (t) => {
  const over = BODY_LIMIT + 1024 * 1024 // within what a closing connection reads (the body limit + 4 MiB)
  await refused(t, upload([`Authorization: Bearer ${TOKEN}`, `Content-Length: ${over}`], Buffer.alloc(over, ' ')), 413, 'MHE_BODY_TOO_LARGE')
})

t.test('401 before the body: the full answer, then a clean close', async (t) => {
  await refused(t, upload([`Content-Length: ${BODY_LIMIT}`], body), 401, 'MHE_UNAUTHORIZED')
})

t.test('the server still answers', async (t) => {
  t.equal((await fetch(`${server.url}/health/live`)).status, 200)
})
