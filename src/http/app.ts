// buildApp(config): the whole service as a Fastify instance (model, batcher, routes, OpenAPI, errors), ready to
// listen. Tests and src/main.ts both start from here; only main.ts listens and handles signals.

import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import { Ajv } from 'ajv'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../config.js'
import { errors, ServiceError } from '../errors.js'
import { Service } from '../serving/service.js'
import { bearerAuth } from './auth.js'
import predictRoutes from './routes/predict.js'
import healthRoutes from './routes/health.js'
import modelRoutes from './routes/model.js'
import metricsRoutes from './routes/metrics.js'
import v2Routes from './routes/v2.js'
import { Metrics } from '../serving/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    mhe: Service
    metrics: Metrics
  }
}

export interface BuildOptions {
  /** Fastify logger setting; defaults to pino at config.logLevel. */
  logger?: FastifyServerOptions['logger']
}

export const OPENAPI_INFO = {
  title: 'MHE prediction service',
  description:
    'Serves Multi-Head Encoding (MHE) extreme-label classifiers: feature vectors in, label ids, names and scores out.',
  version: '0.1.0',
}

/** Sent with every answer; Swagger UI needs inline scripts, so no CSP here (it would go on /docs alone). */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
}
const SECURITY_HEADER_LIST = Object.entries(SECURITY_HEADERS)

/** Maps any error that reaches Fastify's error handler to our error shape with a stable code. */
function toServiceError(err: FastifyError, config: Config, contentType: string | undefined): ServiceError {
  if (err instanceof ServiceError) return err
  if (err.validation) {
    const first = err.validation[0]
    if (first && /(^|\/)top_k$/.test(first.instancePath)) return errors.badTopK((first as { data?: unknown }).data, config.maxTopK)
    return errors.badRequest(`expected the documented request shape: ${err.message}`)
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
  if (status >= 400 && status < 500) return new ServiceError('MHE_BAD_REQUEST', status, err.message)
  return errors.internal()
}

export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'] },
    bodyLimit: config.bodyLimit,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  })

  // Bodies are checked strictly (no coercion of "1" to 1, no silent dropping of unknown fields: no silent wrong
  // answers); query strings are text, so they are coerced. A binary body is checked by the route itself.
  const strict = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, strict: false, validateFormats: false, verbose: true })
  const coercing = new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, strict: false, validateFormats: false, verbose: true })
  app.setValidatorCompiler(({ schema, httpPart }) => {
    if ((schema as { format?: string }).format === 'binary') return () => true
    return (httpPart === 'body' ? strict : coercing).compile(schema)
  })

  const metrics = new Metrics()
  const sendError = (reply: FastifyReply, e: ServiceError): FastifyReply => {
    metrics.reject(e.code)
    return reply
      .code(e.statusCode)
      .headers(e.headers)
      .send({ statusCode: e.statusCode, code: e.code, error: STATUS_CODES[e.statusCode] ?? 'Error', message: e.message })
  }
  app.setErrorHandler((err: FastifyError, request, reply) => {
    let e: ServiceError
    try {
      e = toServiceError(err, config, request.headers['content-type'])
    } catch {
      e = errors.internal() // describing the error failed: still answer in our shape
    }
    if (e.code === 'MHE_INTERNAL') request.log.error({ err }, 'request failed')
    void sendError(reply, e)
  })
  app.setNotFoundHandler((request, reply) => {
    void sendError(reply, new ServiceError('MHE_NOT_FOUND', 404, `no route ${request.method} ${request.url.split('?')[0]}`))
  })
  // Callback-style hooks: an async hook costs a promise per request, and these run on every request.
  app.addHook('onSend', (request, reply, _payload, done) => {
    reply.header('x-request-id', request.id)
    // Closing: answer, then close the connection, so the client moves to another replica instead of reusing it.
    if (app.mhe?.state === 'closing') reply.header('connection', 'close')
    for (const [name, value] of SECURITY_HEADER_LIST) reply.header(name, value)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
  // Event-loop lag guard: past the limit, answer 503 + Retry-After at once instead of queueing more work.
  if (config.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      pressureHandler: (_request, reply, type, value) => {
        void sendError(reply, errors.overloaded(`${type} ${Math.round(Number(value))}`))
      },
    })
  }
  app.removeContentTypeParser('text/plain')
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: OPENAPI_INFO,
      tags: [
        { name: 'predict', description: 'Predictions' },
        { name: 'model', description: 'What is served' },
        { name: 'health', description: 'Probes' },
        { name: 'v2', description: 'Open Inference Protocol (KServe V2): metadata, health, infer' },
      ],
      components: config.apiKeys.length > 0 ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {},
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  const service = await Service.create(config, app.log, metrics.hooks)
  metrics.bindService(service)
  app.decorate('mhe', service)
  app.decorate('metrics', metrics)
  const auth = bearerAuth(config.apiKeys)
  await app.register(async (scope) => {
    if (auth) scope.addHook('onRequest', auth)
    await scope.register(predictRoutes, { config, service })
  })
  await app.register(healthRoutes, { service })
  await app.register(v2Routes, { config, service, auth, serverVersion: OPENAPI_INFO.version })
  await app.register(modelRoutes, { config, service })
  await app.register(async (scope) => {
    if (auth && config.metricsAuth) scope.addHook('onRequest', auth)
    await scope.register(metricsRoutes, { metrics })
  })
  // After the requests in flight are answered: drain the batcher, free the model.
  app.addHook('onClose', async () => service.close())
  await app.ready()
  return app
}
