// Graceful stop in three steps, so that no request sent on an open connection goes unanswered:
// 1. not ready, still serving as usual (load balancers see readiness fail and stop sending);
// 2. stop accepting connections, answer what comes on open ones with `Connection: close`, and wait for them to
//    end: idle ones are closed by the clients themselves, who were told the keep-alive timeout (closing an idle
//    connection from this side races with a client sending on it);
// 3. app.close(): what is left closed, batcher drained, model freed.

import { Server as NetServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'

/** Resolves when every connection has ended, or after `capMs`. */
function stopAccepting(app: FastifyInstance, capMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, capMs)
    // net.Server#close, not http.Server#close: the latter also drops idle keep-alive connections at once, racing
    // with a client that is sending on one right now.
    NetServer.prototype.close.call(app.server, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

export async function drainAndClose(app: FastifyInstance, delayMs: number, keepAliveTimeoutMs: number): Promise<void> {
  app.mhe.state = 'draining'
  await sleep(delayMs)
  app.mhe.state = 'closing'
  await stopAccepting(app, keepAliveTimeoutMs + 1000)
  await app.close()
}
