// The idle sweep on a real server and real sockets: a connection silent both ways is closed after idleMs, one that
// keeps sending is not, and stopping the sweep leaves connections alone.
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { closeIdleSockets } from '../../src/http/idle-sockets.js'

const IDLE_MS = 300

async function server(t: Test) {
  // The handler never answers; Node's own deadlines are far off: only the sweep can close anything.
  const s = createServer({ headersTimeout: 60_000, requestTimeout: 0 }, () => {})
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const stop = closeIdleSockets(s, IDLE_MS)
  t.teardown(() => {
    stop()
    s.closeAllConnections()
    s.close()
  })
  return { port: (s.address() as { port: number }).port, stop }
}

async function open(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let closed = false
  socket.on('close', () => (closed = true))
  socket.on('error', () => {})
  return { socket, closed: () => closed }
}

const head = 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'

t.test('silent both ways: closed after idleMs; still sending: kept', async (t) => {
  const { port } = await server(t)
  const silent = await open(port)
  const busy = await open(port)
  silent.socket.write(head)
  busy.socket.write(head)
  const started = performance.now()
  // The busy one sends a chunk of its never-ending body every IDLE_MS / 3.
  while (performance.now() - started < 3 * IDLE_MS) {
    await sleep(IDLE_MS / 3)
    busy.socket.write('1\r\na\r\n')
  }
  t.ok(silent.closed(), 'the silent connection was closed')
  t.notOk(busy.closed(), 'the one still sending is open')
  const quietFrom = performance.now()
  while (!busy.closed() && performance.now() - quietFrom < 5 * IDLE_MS) await sleep(20)
  t.ok(busy.closed(), 'once it falls silent, it is closed too')
  t.ok(performance.now() - quietFrom >= IDLE_MS * 0.9, 'not before idleMs of silence')
})

t.test('a stopped sweep closes nothing', async (t) => {
  const { port, stop } = await server(t)
  stop()
  const c = await open(port)
  c.socket.write(head)
  await sleep(3 * IDLE_MS)
  t.notOk(c.closed())
  c.socket.destroy()
})
