// Control requests in multi-process mode (MHE_WORKERS > 1): a request that changes what the server serves (the
// repository's load, unload and index) reaches one worker, but must apply to every worker. That worker asks the
// primary (askAllWorkers), the primary runs it on every worker that listens (relayToAll) and answers once each has
// answered, with every worker's outcome; the asking worker combines them. Actions and outcomes are plain JSON, opaque
// here: this module only carries them.

import type { Worker } from 'node:cluster'

const ASK = 'mhe:control-ask'
const ANSWER = 'mhe:control-answer'
const RUN = 'mhe:control-run'
const DONE = 'mhe:control-done'

/** One worker's outcome of a relayed action (`outcome` undefined when the worker went away or its run threw). */
export interface WorkerOutcome<O> {
  pid: number
  outcome?: O
}

type Message =
  | { type: typeof ASK; id: number; action: unknown }
  | { type: typeof ANSWER; id: number; outcomes: WorkerOutcome<unknown>[] }
  | { type: typeof RUN; id: number; action: unknown }
  | { type: typeof DONE; id: number; outcome: unknown }

const isMessage = (m: unknown): m is Message =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('mhe:control-')

// ---- In a worker ----

const asked = new Map<number, { resolve: (o: WorkerOutcome<unknown>[]) => void; reject: (e: Error) => void }>()
let askSeq = 0
let listening = false

/**
 * In a worker: runs `action` on every worker (this one included) through the primary, and resolves with each
 * worker's outcome. The answer arrives through runRelayedActions' listener: call that first.
 */
export function askAllWorkers<A, O>(action: A): Promise<WorkerOutcome<O>[]> {
  const send = process.send?.bind(process)
  if (send === undefined || !process.connected) return Promise.reject(new Error('not a cluster worker connected to its primary'))
  const id = ++askSeq
  return new Promise((resolve, reject) => {
    asked.set(id, { resolve: resolve as (o: WorkerOutcome<unknown>[]) => void, reject })
    send({ type: ASK, id, action } satisfies Message)
  })
}

/** In a worker: runs the actions the primary relays with `run` and sends each outcome back. */
export function runRelayedActions<A, O>(run: (action: A) => Promise<O>): void {
  if (listening) return
  listening = true
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return
    if (m.type === ANSWER) {
      const waiting = asked.get(m.id)
      asked.delete(m.id)
      waiting?.resolve(m.outcomes)
    } else if (m.type === RUN) {
      // A run that throws answers no outcome, so the primary never waits on it forever.
      void run(m.action as A)
        .catch(() => undefined)
        .then((outcome) => {
          if (process.connected) process.send?.({ type: DONE, id: m.id, outcome } satisfies Message)
        })
    }
  })
  process.on('disconnect', () => {
    for (const w of asked.values()) w.reject(new Error('the cluster primary went away'))
    asked.clear()
  })
}

// ---- In the primary ----

/**
 * In the primary: answers workers' control requests by running each on every worker in `workers()` (those that
 * listen) and sending the asker every outcome once all answered; a worker that exits meanwhile counts as one without
 * an outcome. Call on each forked worker.
 */
export function relayControl(asker: Worker, workers: () => Iterable<Worker>): void {
  asker.on('message', (m: unknown) => {
    if (!isMessage(m) || m.type !== ASK) return
    void runOnAll(m.action, [...workers()]).then((outcomes) => {
      if (asker.isConnected()) asker.send({ type: ANSWER, id: m.id, outcomes } satisfies Message)
    })
  })
}

let runSeq = 0

function runOnAll(action: unknown, workers: Worker[]): Promise<WorkerOutcome<unknown>[]> {
  return Promise.all(workers.map((w) => runOn(w, action)))
}

function runOn(w: Worker, action: unknown): Promise<WorkerOutcome<unknown>> {
  const pid = w.process.pid ?? 0
  if (!w.isConnected()) return Promise.resolve({ pid })
  const id = ++runSeq
  return new Promise((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isMessage(m) || m.type !== DONE || m.id !== id) return
      done({ pid, outcome: m.outcome })
    }
    const onExit = (): void => done({ pid })
    const done = (o: WorkerOutcome<unknown>): void => {
      w.off('message', onMessage).off('exit', onExit)
      resolve(o)
    }
    w.on('message', onMessage).on('exit', onExit)
    w.send({ type: RUN, id, action } satisfies Message)
  })
}
