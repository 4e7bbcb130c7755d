// The HTTP ceiling: a bare Fastify server with the service's body parsing (JSON, and raw bytes for
// application/octet-stream, same body limit) whose POST /predict answers a constant. Whatever /predict does beyond
// this is the service's own overhead. CEILING_LOGGER=none (default): Fastify's defaults, no logger, what a user
// would compare against; CEILING_LOGGER=same: the service's pino logger at LOG_LEVEL with Fastify's request logging.

import Fastify from 'fastify'
import { loadConfig } from '../src/config.js'

const config = loadConfig(process.env, process.argv.slice(2))
const sameLogger = process.env.CEILING_LOGGER === 'same'
const app = Fastify({ logger: sameLogger ? { level: config.logLevel } : false, bodyLimit: config.bodyLimit })
app.removeContentTypeParser('text/plain')
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

// Same shape and about the same size as a one-instance, top-1 answer of the real service.
const ANSWER = {
  model: 'ceiling',
  version: '1',
  predictions: [{ label_id: 1, label: 'label-1', score: 0.5, head_ids: [0, 0, 1], top_k: [{ label_id: 1, label: 'label-1', score: 0.5 }] }],
}
app.post('/predict', async (request) => {
  const body = request.body as { instances?: unknown[] } | Buffer
  if (!Buffer.isBuffer(body) && !Array.isArray(body.instances)) throw new Error('expected instances')
  return ANSWER
})
app.get('/health/ready', async () => ({ status: 'ready' }))

await app.listen({ port: config.port, host: config.host })
process.stdout.write(`ceiling listening at http://${config.host}:${(app.server.address() as { port: number }).port}\n`)
const stop = (): void => {
  void app.close().then(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
