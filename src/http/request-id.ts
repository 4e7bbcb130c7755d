// The request id (x-request-id, echoed on every answer and in every log line of the request) and the request as the
// log shows it: a caller's id is kept only when it is short and plain; the URL is logged without its query string,
// which may carry a token (?access_token=...), and which the service does not need in its logs.

import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'

/** A caller's id we echo: up to 128 characters of letters, digits and `-_.:/+=@`; anything else gets a fresh UUID. */
const ACCEPTED_ID = /^[\w.:/+=@-]{1,128}$/

/**
 * A made id has a UUID's shape: the first 24 characters of a random UUID, drawn once per process (so ids from
 * different processes and replicas differ), then a 12-digit hex counter. A random UUID per request cost ~2 µs.
 */
const MADE_PREFIX = randomUUID().slice(0, 24)
let made = 0

export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && ACCEPTED_ID.test(given) ? given : MADE_PREFIX + (made++).toString(16).padStart(12, '0')
}

/** `/predict?top_k=3&token=x` -> `/predict?(query not logged)`. */
export const loggedUrl = (url: string): string => {
  const q = url.indexOf('?')
  return q < 0 ? url : `${url.slice(0, q)}?(query not logged)`
}

/** pino's `req` serializer: what Fastify logs by default, with the query left out of the URL. */
export function requestSerializer(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: loggedUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}
