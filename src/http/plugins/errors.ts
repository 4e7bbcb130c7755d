// One error handler: every failure (ours, Fastify's, a plugin's or the batcher's) becomes a ServiceError, whose
// code fixes status and headers (src/errors.ts), and is answered in Fastify's error shape and counted by code.

import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { errors, ServiceError } from '../../errors.js'
import { BatcherClosedError, CancelledError, DeadlineExceededError, QueueFullError } from '../../serving/batcher.js'
import { topKSchemaError } from '../top-k.js'

/** The path of a URL, without its query. */
const pathOf = (url: string): string => url.split('?', 1)[0]!

/** The request declared a body and not all of it has been read. */
const bodyStillArriving = (request: FastifyRequest): boolean =>
  !request.raw.complete && (request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length']) > 0)

function toServiceError(err: FastifyError, app: FastifyInstance, request: FastifyRequest): ServiceError {
  const contentType = request.headers['content-type']
  if (err instanceof ServiceError) return err
  const { config } = app
  // The batcher's refusals.
  if (err instanceof QueueFullError) return errors.queueFull()
  if (err instanceof BatcherClosedError) return errors.shuttingDown()
  if (err instanceof DeadlineExceededError) return errors.timeout(config.requestTimeoutMs)
  if (err instanceof CancelledError) return errors.clientClosed()
  if (err.validation) {
    const first = err.validation[0]
    const got = first && 'data' in first ? first.data : undefined // Ajv's verbose mode keeps the value
    const extra = first?.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined
    if (extra !== undefined) return errors.unknownField(err.validationContext ?? 'body', extra, first?.instancePath)
    return (first && topKSchemaError(first.instancePath, got, config.maxTopK)) ?? errors.badRequest(`expected the documented request shape: ${err.message}`)
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType(contentType)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.bodyTooLarge(config.bodyLimit)
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.malformedJson(err.message)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.badRequest('expected a JSON body with "instances", got an empty body')
  }
  if (err instanceof SyntaxError) return errors.malformedJson(err.message)
  const status = err.statusCode ?? 500
  if (status === 403) return errors.forbidden(pathOf(request.url)) // @fastify/static (Swagger UI's files): a directory, a path outside
  if (status >= 400 && status < 500) return errors.badRequest(err.message)
  if (app.mhe.state === 'failed') return errors.engineFailed() // the batch in flight when the engine thread died
  return errors.internal()
}

export default fp(
  async function errorHandling(app) {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      let e: ServiceError
      try {
        e = toServiceError(err, app, request)
      } catch {
        e = errors.internal() // describing the error failed: still answer in our shape
      }
      if (e.code === 'MHE_INTERNAL') request.log.error({ err }, 'request failed')
      app.metrics.reject(e.code)
      // Refused while the body is still arriving (auth, limits): close rather than read a body we will not use; the
      // close lingers, so the client reads this answer rather than a reset (src/http/lingering-close.ts).
      if (bodyStillArriving(request)) reply.header('connection', 'close')
      void reply
        .code(e.statusCode)
        .headers(e.headers)
        .send({ statusCode: e.statusCode, code: e.code, error: STATUS_CODES[e.statusCode] ?? 'Error', message: e.message })
    })
    // The methods of each route path, for 405 + Allow: a known path asked with another method is not a 404.
    const methods = new Map<string, Set<string>>()
    app.addHook('onRoute', (route) => {
      const set = methods.get(route.url) ?? new Set<string>()
      for (const m of [route.method].flat()) set.add(m)
      methods.set(route.url, set)
    })
    app.setNotFoundHandler((request, reply) => {
      const path = pathOf(request.url)
      const allowed = methods.get(path)
      if (allowed === undefined) throw errors.notFound(request.method, path)
      const list = [...allowed].sort()
      void reply.header('allow', list.join(', '))
      throw errors.methodNotAllowed(request.method, path, list)
    })
  },
  { name: 'mhe-errors', dependencies: ['mhe-metrics'], decorators: { fastify: ['config'] } },
)
