// Graceful stop in three steps, so that no request sent on an open connection goes unanswered:
// 1. not ready, still serving as usual (load balancers see readiness fail and stop sending);
// 2. stop accepting connections, answer what comes on open ones with `Connection: close`, and wait for them to
//    end: idle ones are closed by the clients themselves, who were told the keep-alive timeout (closing an idle
//    connection from this side races with a client sending on it);
// 3. app.close(): what is left closed, batcher drained, model freed.

import { Server as NetServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'

type ShutdownTimes = Pick<Config, 'drainDelayMs' | 'keepAliveTimeoutMs' | 'shutdownGraceMs'>

/** How long step 2 waits for open connections: past the keep-alive timeout clients were told, they close. */
const connectionsCapMs = (c: Pick<Config, 'keepAliveTimeoutMs'>): number => c.keepAliveTimeoutMs + 1000

/** The longest a clean stop may take; past it the process gives up on unfinished work. */
export const shutdownBudgetMs = (c: ShutdownTimes): number => c.drainDelayMs + connectionsCapMs(c) + c.shutdownGraceMs

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

export async function drainAndClose(app: FastifyInstance, c: ShutdownTimes): Promise<void> {
  app.mhe.lifecycle.to('draining')
  await sleep(c.drainDelayMs)
  app.mhe.lifecycle.to('closing')
  await stopAccepting(app, connectionsCapMs(c))
  await app.close()
}
