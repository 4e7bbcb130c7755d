// Lingering close, as nginx's lingering_close: a connection we close while its client is still uploading (a refusal
// before the body: 503 queue full, 413, 401; a 408 body timeout) is not closed at once. Closing a socket with unread
// input makes the kernel send RST, and a client still writing its body then gets EPIPE or ECONNRESET instead of our
// answer. So: the answer is written, our side shut down (FIN), and what the client still sends is read and discarded
// until it closes too, or LINGER_MS pass, or the body limit plus LINGER_EXTRA_BYTES arrive (a client uploading a
// whole body of the largest size we take still reads our answer); then the socket is destroyed. Nothing read is
// kept: a lingering connection costs a socket, not memory.

import type { IncomingMessage, Server } from 'node:http'
import type { Socket } from 'node:net'

/** The longest a closing connection is read from before it is destroyed. */
export const LINGER_MS = 2000
/** Read and discarded from a closing connection past the body limit (checked every LINGER_CHECK_MS: a fast client
 * may send somewhat more before the check sees it). */
export const LINGER_EXTRA_BYTES = 4 * 1024 * 1024
const LINGER_CHECK_MS = 50

/** The request a socket carries now: lingering only helps while its body is still arriving. */
const current = new WeakMap<Socket, IncomingMessage>()
const lingering = new WeakSet<Socket>()

function lingerThenDestroy(socket: Socket, maxBytes: number): void {
  if (lingering.has(socket)) return
  lingering.add(socket)
  const req = current.get(socket)
  const destroy = () => socket.destroy()
  const destroyOnceWritten = () => {
    if (socket.writableFinished) destroy()
    else socket.once('finish', destroy)
  }
  if (req?.complete === true || socket.destroyed) {
    // Nothing more is expected from the client: Node's own destroySoon (end, then destroy once written).
    socket.end()
    destroyOnceWritten()
    return
  }
  socket.end() // our answer, then FIN: the client reads it whole
  const start = socket.bytesRead
  // Node's HTTP parser reads the socket itself and drops the body of a request it dumped: no event per chunk to count
  // bytes on, so the count is looked at every LINGER_CHECK_MS.
  const check = setInterval(() => {
    if (socket.bytesRead - start > maxBytes) destroy()
  }, LINGER_CHECK_MS)
  const timer = setTimeout(destroy, LINGER_MS)
  check.unref()
  timer.unref()
  socket.once('close', () => {
    clearInterval(check)
    clearTimeout(timer)
  })
  // The whole body arrived: nothing unread is left, so close once our answer is written.
  req?.once('end', destroyOnceWritten)
  // The client's FIN ends the readable side; with ours ended the socket then closes by itself (autoDestroy).
  socket.resume()
}

/** Every connection of `server` closed by lingerThenDestroy where Node would destroy it after its last answer. */
export function lingerOnClose(server: Server, bodyLimit: number): void {
  const maxBytes = bodyLimit + LINGER_EXTRA_BYTES
  server.on('connection', (socket: Socket) => {
    // Node closes a connection whose last answer carried `Connection: close` with socket.destroySoon(), and the
    // clientErrorHandler closes with it too: both linger now.
    socket.destroySoon = () => lingerThenDestroy(socket, maxBytes)
  })
  server.on('request', (req: IncomingMessage) => current.set(req.socket, req))
}
