// Connections silent both ways for idleMs are closed (README "Limits": e.g. a client that stops reading its answer).
// Checked by a sweep every few hundred ms, as Node checks its headers and request deadlines, instead of Node's own
// per-socket timer (server.timeout): that one is re-armed on every read and write and swapped with the keep-alive
// timer on every request, ~20 µs of a lone request's ~250 (bench/README.md, session 8).

import type { Server } from 'node:http'
import type { Socket } from 'node:net'

interface Seen {
  read: number
  written: number
  /** When its byte counts last moved. */
  since: number
}

/** Closes connections of `server` that move no byte either way for `idleMs`; returns the function that stops it. */
export function closeIdleSockets(server: Server, idleMs: number, now: () => number = () => performance.now()): () => void {
  const sockets = new Map<Socket, Seen>()
  server.on('connection', (socket: Socket) => {
    sockets.set(socket, { read: 0, written: 0, since: now() })
    socket.once('close', () => sockets.delete(socket))
  })
  // Fine enough against the deadline: a connection is closed between idleMs and idleMs + one sweep.
  const sweep = setInterval(
    () => {
      const t = now()
      for (const [socket, seen] of sockets) {
        const { bytesRead, bytesWritten } = socket
        if (bytesRead !== seen.read || bytesWritten !== seen.written) {
          seen.read = bytesRead
          seen.written = bytesWritten
          seen.since = t
        } else if (t - seen.since >= idleMs) {
          socket.destroy()
        }
      }
    },
    Math.max(10, Math.min(1000, idleMs / 8)),
  )
  sweep.unref()
  return () => clearInterval(sweep)
}
