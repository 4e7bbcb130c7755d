// buildApp(config): the whole service as a Fastify instance, built from named plugins in a fixed order, routes last.
// Tests and src/main.ts both start from here; only main.ts listens and handles signals.

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { socketTimeouts, type Config } from '../config.js'
import { AccessLog, lazyChildLogger } from './access-log.js'
import { clientErrorHandler } from './client-errors.js'
import { requestId, requestSerializer } from './request-id.js'
import limits from './plugins/limits.js'
import input from './plugins/input.js'
import metrics from './plugins/metrics.js'
import errorHandling from './plugins/errors.js'
import security from './plugins/security.js'
import pressure from './plugins/pressure.js'
import openapi from './plugins/swagger.js'
import service from './plugins/service.js'
import admission from './plugins/admission.js'
import routes from './routes/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface BuildOptions {
  /** Fastify logger setting; defaults to pino at config.logLevel. */
  logger?: FastifyServerOptions['logger']
  /**
   * Load and warm up the model before returning (default true). With false the service is 'starting' until the
   * caller runs app.mhe.start(): main.ts listens first, so probes answer while a large bundle loads.
   */
  startService?: boolean
}

export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const timeouts = socketTimeouts(config)
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'], serializers: { req: requestSerializer } },
    bodyLimit: config.bodyLimit,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // One access line per request, errors and slow ones at info; children of the logger made only when used.
    logController: new AccessLog(config.slowRequestMs),
    childLoggerFactory: lazyChildLogger,
    // Every socket bounded in time (README "Limits"): the whole request must arrive within requestTimeout (else
    // 408, clientErrorHandler), its headers within headersTimeout, and a socket silent both ways is closed.
    requestTimeout: timeouts.requestMs,
    connectionTimeout: timeouts.idleMs,
    // Node checks those deadlines every connectionsCheckingInterval (30 s by default: far past a short deadline).
    http: { headersTimeout: timeouts.headersMs, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.headersMs / 4))) },
    clientErrorHandler,
    requestIdHeader: false,
    genReqId: requestId,
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.decorate('config', config)

  await app.register(input) // parsers and validators
  await app.register(metrics) // app.metrics, requests counted
  await app.register(errorHandling) // every error in our shape (needs metrics)
  await app.register(security) // headers, bearer check
  await app.register(pressure) // event-loop lag guard (needs errors)
  await app.register(limits) // connections, bodies in flight, 100-continue, 405 (needs errors)
  await app.register(openapi) // sees the routes registered after it
  await app.register(service) // app.mhe (needs metrics)
  await app.register(admission) // queue room held before a body is read, or 503 at once (needs service, errors)
  await app.register(routes)
  await app.ready()

  if (opts.startService !== false) {
    try {
      await app.mhe.start()
    } catch (err) {
      await app.close()
      throw err
    }
  }
  return app
}
