// Errors Node's HTTP parser raises before a request reaches Fastify (malformed request, headers too large, a request
// that did not arrive in time), answered in our error shape where nothing of an answer was sent yet, then the
// connection closed: after a parse error the stream cannot be trusted to continue.

import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { errors, type ServiceError } from '../errors.js'

/** What a parser error means to the client: 408, 431 or 400, named by Node's code (HPE_* or ERR_HTTP_*). */
export function parserError(err: Error & { code?: string }, bodyTimeoutMs: number): ServiceError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return errors.requestTimeout(bodyTimeoutMs)
    case 'HPE_HEADER_OVERFLOW':
      return errors.headersTooLarge()
    default:
      return errors.badHttp(err.code ?? 'unknown')
  }
}

/** The raw HTTP/1.1 answer for `e`: the server can no longer go through Fastify for this connection. */
function rawAnswer(e: ServiceError): string {
  const error = STATUS_CODES[e.statusCode] ?? 'Error'
  const body = JSON.stringify({ statusCode: e.statusCode, code: e.code, error, message: e.message })
  const headers = Object.entries(e.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  return (
    `HTTP/1.1 ${e.statusCode} ${error}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `${headers}connection: close\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\n\r\n${body}`
  )
}

/** Fastify's clientErrorHandler: `this` is the app. */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const e = parserError(err, this.config.bodyTimeoutMs)
  this.metrics.reject(e.code)
  this.log.debug({ err: { code: err.code, message: err.message } }, 'client error')
  // Answer only if no answer to a request on this socket has begun (Node's own rule): bytes after a partial answer
  // would corrupt it.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && !inFlight?.headersSent) socket.end(rawAnswer(e))
  socket.destroySoon()
}
