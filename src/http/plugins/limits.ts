// What a client may hold (README "Limits"): open connections (MHE_MAX_CONNECTIONS), request-body bytes in flight
// (MHE_MAX_INFLIGHT_BYTES: what bounds the memory bodies take), and `Expect: 100-continue` answered only once the
// request passed the checks that need no body (auth, length, in-flight bytes). A connection closed while its body
// is still arriving lingers (src/http/lingering-close.ts). The deadlines on sockets are Fastify options
// (src/http/app.ts).

import fp from 'fastify-plugin'
import { errors } from '../../errors.js'
import { lingerOnClose } from '../lingering-close.js'

const MIB = 1024 * 1024

export default fp(
  async function limits(app) {
    const { bodyLimit, maxConnections, maxInflightBytes } = app.config
    // Past it Node closes a new connection at once: cheaper than answering it, and a client retries elsewhere.
    app.server.maxConnections = maxConnections
    lingerOnClose(app.server, bodyLimit)
    // With a listener here Node sends no `100 Continue` by itself; the preParsing hook below sends it.
    app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res))

    let inFlight = 0
    // preParsing: after the onRequest hooks (the bearer check), before the body is read.
    app.addHook('preParsing', (request, reply, payload, done) => {
      const length = request.headers['content-length']
      const chunked = request.headers['transfer-encoding'] !== undefined
      if (length === undefined && !chunked) return done(null, payload)
      const declared = chunked ? bodyLimit : Number(length)
      // Over the body limit: Fastify's parser answers 413 without reading it; nothing is held.
      if (!(declared <= bodyLimit)) return done(null, payload)
      if (declared > 0 && inFlight + declared > maxInflightBytes) {
        const held = (inFlight / MIB).toFixed(1)
        return done(errors.overloaded(`${held} MiB of request bodies in flight, limit ${(maxInflightBytes / MIB).toFixed(1)} MiB`))
      }
      inFlight += declared
      reply.raw.once('close', () => (inFlight -= declared))
      if (/100-continue/i.test(request.headers.expect ?? '')) reply.raw.writeContinue()
      done(null, payload)
    })
  },
  { name: 'mhe-limits', dependencies: ['mhe-errors'], decorators: { fastify: ['config'] } },
)
